package synth

// The static catalogue of the simulated company: systems and datasets with
// their data categories (Fides taxonomy style), roles with what they do,
// named service accounts and the partner registry.

// datasetSpec describes one dataset of a system.
type datasetSpec struct {
	system, name string
	skind        string // subject kind
	recBytes     int64  // bytes per record when moved
	backup       int64  // records in the nightly backup (0: not backed up)
	cats         []string
}

var datasetSpecs = []datasetSpec{
	{"crm", "contacts", "customer", 420, 1_200_000, []string{"user.name", "user.contact.email", "user.contact.phone_number", "user.contact.address.city", "user.account.username"}},
	{"crm", "accounts", "customer", 380, 0, []string{"user.name", "user.contact.email", "user.account.settings", "user.financial.credit_card"}},
	{"crm", "leads", "prospect", 300, 0, []string{"user.name", "user.contact.email", "user.contact.phone_number", "user.job_title"}},
	{"billing", "invoices", "customer", 520, 640_000, []string{"user.name", "user.contact.address.street", "user.contact.address.postal_code", "user.behavior.purchase_history"}},
	{"billing", "payment_methods", "customer", 260, 0, []string{"user.name", "user.financial.bank_account", "user.financial.credit_card"}},
	{"billing", "subscriptions", "customer", 200, 0, []string{"user.unique_id", "user.account.settings", "user.behavior.purchase_history"}},
	{"hr", "employees", "employee", 900, 0, []string{"user.name", "user.contact.email", "user.contact.address.street", "user.government_id.national_identification_number", "user.demographic.date_of_birth", "user.job_title"}},
	{"hr", "payroll", "employee", 600, 0, []string{"user.name", "user.financial.bank_account", "user.government_id.national_identification_number"}},
	{"hr", "candidates", "job_applicant", 1200, 0, []string{"user.name", "user.contact.email", "user.contact.phone_number", "user.job_title"}},
	{"support-desk", "tickets", "customer", 1500, 0, []string{"user.name", "user.contact.email", "user.account.username"}},
	{"support-desk", "customers", "customer", 450, 0, []string{"user.name", "user.contact.email", "user.contact.phone_number", "user.contact.address.street", "user.account.username"}},
	{"support-desk", "chat_transcripts", "customer", 3000, 0, []string{"user.name", "user.contact.email", "user.behavior.browsing_history"}},
	{"dwh", "customers_dim", "customer", 350, 0, []string{"user.unique_id", "user.name", "user.contact.email", "user.contact.address.city", "user.demographic.age_range", "user.demographic.gender"}},
	{"dwh", "orders_fact", "customer", 150, 0, []string{"user.unique_id", "user.behavior.purchase_history"}},
	{"dwh", "web_sessions", "customer", 220, 0, []string{"user.unique_id", "user.behavior.browsing_history", "user.device.ip_address", "user.location.imprecise"}},
	{"marketing-automation", "audiences", "customer", 180, 0, []string{"user.contact.email", "user.demographic.age_range", "user.behavior.purchase_history"}},
	{"marketing-automation", "email_events", "customer", 120, 0, []string{"user.contact.email", "user.behavior.browsing_history"}},
	{"app-db", "users", "customer", 400, 2_000_000, []string{"user.unique_id", "user.name", "user.contact.email", "user.account.username"}},
	{"app-db", "addresses", "customer", 180, 1_100_000, []string{"user.contact.address.street", "user.contact.address.postal_code", "user.contact.address.city"}},
	{"app-db", "devices", "customer", 160, 900_000, []string{"user.unique_id", "user.device.cookie_id", "user.device.ip_address"}},
	{"app-db", "locations", "customer", 90, 0, []string{"user.unique_id", "user.location.precise"}},
	// Children on family plans; no normal activity touches it (only the
	// children's-data policy scenario does).
	{"app-db", "family_members", "child", 120, 0, []string{"user.unique_id", "user.name", "user.demographic.age_range"}},
	{"analytics", "events", "customer", 140, 0, []string{"user.unique_id", "user.behavior.browsing_history", "user.device.cookie_id"}},
	{"analytics", "cohorts", "customer", 100, 0, []string{"user.unique_id", "user.demographic.age_range", "user.behavior.purchase_history"}},
	{"care-portal", "patients", "patient", 700, 310_000, []string{"user.name", "user.contact.email", "user.demographic.date_of_birth", "user.health_and_medical"}},
	{"care-portal", "appointments", "patient", 260, 0, []string{"user.name", "user.health_and_medical", "user.contact.phone_number"}},
	{"care-portal", "lab_results", "patient", 900, 0, []string{"user.unique_id", "user.health_and_medical"}},
	{"payments-gateway", "transactions", "customer", 240, 0, []string{"user.unique_id", "user.financial.credit_card", "user.contact.address.postal_code"}},
	{"identity", "accounts", "customer", 210, 0, []string{"user.unique_id", "user.account.username", "user.contact.email"}},
	{"identity", "login_events", "customer", 130, 0, []string{"user.unique_id", "user.device.ip_address", "user.location.imprecise"}},
	{"sales-engagement", "sequences", "prospect", 260, 0, []string{"user.name", "user.contact.email", "user.job_title"}},
	{"logistics", "shipments", "customer", 310, 0, []string{"user.name", "user.contact.address.street", "user.contact.address.postal_code", "user.contact.phone_number"}},
	{"finance-erp", "expenses", "employee", 330, 0, []string{"user.name", "user.financial.bank_account"}},
	{"finance-erp", "receivables", "customer", 280, 0, []string{"user.name", "user.financial.bank_account", "user.behavior.purchase_history"}},
	{"feature-store", "user_features", "customer", 210, 0, []string{"user.unique_id", "user.behavior.browsing_history", "user.behavior.purchase_history", "user.location.imprecise"}},
	{"consent-manager", "preferences", "customer", 90, 0, []string{"user.unique_id", "user.account.settings"}},
	{"recommendations", "profiles", "customer", 140, 0, []string{"user.unique_id", "user.behavior.browsing_history"}},
	{"notifications", "outbox", "customer", 260, 0, []string{"user.contact.email", "user.contact.phone_number"}},
	{"loyalty", "members", "customer", 230, 0, []string{"user.unique_id", "user.name", "user.behavior.purchase_history"}},
	{"reviews", "reviews", "customer", 500, 0, []string{"user.unique_id", "user.name"}},
	{"fraud-detection", "scores", "customer", 120, 0, []string{"user.unique_id", "user.device.ip_address", "user.financial.credit_card"}},
	{"call-center", "recordings", "customer", 4000, 0, []string{"user.name", "user.contact.phone_number"}},
	{"document-store", "contracts", "customer", 2500, 0, []string{"user.name", "user.contact.address.street", "user.financial.bank_account"}},
	{"geo-service", "geocodes", "customer", 80, 0, []string{"user.location.precise", "user.contact.address.postal_code"}},
	{"surveys", "responses", "customer", 600, 0, []string{"user.unique_id", "user.demographic.age_range", "user.demographic.gender"}},
	{"referrals", "invites", "customer", 150, 0, []string{"user.contact.email", "user.name"}},
	{"returns", "rmas", "customer", 260, 0, []string{"user.name", "user.contact.address.street", "user.behavior.purchase_history"}},
	{"search", "queries", "customer", 110, 0, []string{"user.unique_id", "user.behavior.browsing_history"}},
	{"pricing", "offers", "customer", 90, 0, []string{"user.unique_id", "user.behavior.purchase_history"}},
	{"inventory", "reservations", "customer", 100, 0, []string{"user.unique_id", "user.behavior.purchase_history"}},
	{"audit-log", "admin_actions", "employee", 200, 0, []string{"user.unique_id", "user.device.ip_address"}},
}

// subjectPrefix maps a subject kind to the prefix of its subject ids.
var subjectPrefix = map[string]string{
	"customer":      "cust-",
	"prospect":      "lead-",
	"employee":      "emp-",
	"job_applicant": "cand-",
	"patient":       "pat-",
	"child":         "kid-",
}

// actSpec is one thing an actor does, with a relative weight. The dataset
// is "system/dataset".
type actSpec struct {
	weight  float64
	kind    actKind
	ds      string
	action  string
	lo, hi  int64 // records range for data-moving actions (and queries)
	purpose string
	legal   string
	ticket  string // ticket prefix, "" for none
	partner string // partner id, for partner shares
}

// actKind says how an activity becomes an event.
type actKind uint8

const (
	actAccess       actKind = iota // an access event on ds
	actEmailSubject                // an e-mail to the data subject
	actPartnerShare                // a transfer to a partner under an agreement
)

// roleSpec is an employee role.
type roleSpec struct {
	name, dept string
	weight     float64 // share of employees
	shift      shiftKind
	acts       []actSpec
}

type shiftKind uint8

const (
	shiftOffice  shiftKind = iota // weekdays 08:00-17:00 or 09:00-18:00 local
	shiftSupport                  // rota: 06-14 or 14-22, weekends included
	shiftOnCall                   // office hours plus some evenings
)

var roleSpecs = []roleSpec{
	{"support_agent", "customer_care", 0.24, shiftSupport, []actSpec{
		{50, actAccess, "support-desk/tickets", "read", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
		{18, actAccess, "support-desk/customers", "read", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
		{10, actAccess, "support-desk/tickets", "update", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
		{8, actAccess, "crm/contacts", "read", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
		{5, actAccess, "billing/invoices", "read", 1, 3, "essential.service.operations.support", "contract", "CS-", ""},
		{6, actEmailSubject, "support-desk/tickets", "transfer", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
		{2, actAccess, "support-desk/chat_transcripts", "read", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
		{1, actAccess, "support-desk/tickets", "export", 5, 120, "essential.service.operations.support", "contract", "CS-", ""},
	}},
	{"support_lead", "customer_care", 0.03, shiftOffice, []actSpec{
		{40, actAccess, "support-desk/tickets", "read", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
		{20, actAccess, "support-desk/tickets", "query", 20, 400, "analytics.reporting", "legitimate_interests", "", ""},
		{10, actAccess, "support-desk/customers", "export", 50, 900, "analytics.reporting", "legitimate_interests", "", ""},
		{10, actAccess, "call-center/recordings", "read", 1, 1, "essential.service.operations.support", "contract", "CS-", ""},
	}},
	{"analyst", "analytics", 0.06, shiftOffice, []actSpec{
		{45, actAccess, "dwh/orders_fact", "query", 500, 60000, "analytics.reporting", "legitimate_interests", "", ""},
		{20, actAccess, "dwh/customers_dim", "query", 200, 20000, "analytics.reporting", "legitimate_interests", "", ""},
		{10, actAccess, "dwh/web_sessions", "query", 1000, 90000, "analytics.reporting", "legitimate_interests", "", ""},
		{10, actAccess, "analytics/cohorts", "read", 1, 1, "analytics.reporting", "legitimate_interests", "", ""},
		{6, actAccess, "dwh/orders_fact", "export", 100, 1500, "analytics.reporting", "legitimate_interests", "DATA-", ""},
		{3, actAccess, "dwh/customers_dim", "download", 50, 800, "analytics.reporting", "legitimate_interests", "DATA-", ""},
	}},
	{"data_scientist", "analytics", 0.04, shiftOffice, []actSpec{
		{40, actAccess, "feature-store/user_features", "query", 1000, 200000, "analytics.reporting", "legitimate_interests", "", ""},
		{25, actAccess, "dwh/web_sessions", "query", 1000, 100000, "analytics.reporting", "legitimate_interests", "", ""},
		{15, actAccess, "analytics/events", "read", 1, 1, "analytics.reporting", "legitimate_interests", "", ""},
		{6, actAccess, "feature-store/user_features", "export", 200, 1800, "analytics.reporting", "legitimate_interests", "DATA-", ""},
	}},
	{"software_engineer", "engineering", 0.14, shiftOnCall, []actSpec{
		{40, actAccess, "app-db/users", "read", 1, 1, "essential.service", "contract", "", ""},
		{15, actAccess, "app-db/devices", "query", 1, 50, "essential.service", "contract", "", ""},
		{10, actAccess, "identity/login_events", "query", 10, 500, "essential.service.operations", "legitimate_interests", "INC-", ""},
		{8, actAccess, "app-db/users", "update", 1, 1, "essential.service", "contract", "CHG-", ""},
		{6, actAccess, "search/queries", "read", 1, 1, "essential.service", "contract", "", ""},
		{2, actAccess, "app-db/addresses", "export", 10, 300, "essential.service.operations", "legitimate_interests", "INC-", ""},
	}},
	{"sre", "engineering", 0.04, shiftOnCall, []actSpec{
		{30, actAccess, "audit-log/admin_actions", "query", 10, 2000, "essential.service.operations", "legitimate_interests", "", ""},
		{30, actAccess, "identity/login_events", "query", 10, 2000, "essential.service.operations", "legitimate_interests", "INC-", ""},
		{10, actAccess, "app-db/users", "read", 1, 1, "essential.service.operations", "legitimate_interests", "INC-", ""},
		{2, actAccess, "app-db/devices", "delete", 1, 20, "essential.service.operations", "legal_obligation", "CHG-", ""},
	}},
	{"campaign_specialist", "marketing", 0.05, shiftOffice, []actSpec{
		{40, actAccess, "marketing-automation/audiences", "query", 100, 50000, "marketing.communications.email", "consent", "", ""},
		{30, actAccess, "marketing-automation/email_events", "read", 1, 1, "analytics.reporting", "consent", "", ""},
		{10, actAccess, "marketing-automation/audiences", "update", 1, 1, "marketing.communications.email", "consent", "", ""},
		{4, actAccess, "marketing-automation/audiences", "export", 100, 1200, "marketing.communications.email", "consent", "MKT-", ""},
	}},
	{"marketing_manager", "marketing", 0.02, shiftOffice, []actSpec{
		{50, actAccess, "analytics/cohorts", "read", 1, 1, "analytics.reporting", "legitimate_interests", "", ""},
		{30, actAccess, "marketing-automation/audiences", "query", 100, 20000, "marketing.communications.email", "consent", "", ""},
		{5, actAccess, "surveys/responses", "export", 50, 600, "analytics.reporting", "consent", "", ""},
	}},
	{"hr_partner", "people", 0.025, shiftOffice, []actSpec{
		{50, actAccess, "hr/employees", "read", 1, 1, "employment.administration", "contract", "HR-", ""},
		{20, actAccess, "hr/employees", "update", 1, 1, "employment.administration", "contract", "HR-", ""},
		{10, actAccess, "hr/payroll", "read", 1, 1, "employment.payroll", "contract", "", ""},
		{3, actPartnerShare, "hr/payroll", "transfer", 1, 40, "", "", "", "payrollpro"},
	}},
	{"recruiter", "people", 0.02, shiftOffice, []actSpec{
		{60, actAccess, "hr/candidates", "read", 1, 1, "employment.recruitment", "consent", "", ""},
		{20, actAccess, "hr/candidates", "update", 1, 1, "employment.recruitment", "consent", "", ""},
		{5, actEmailSubject, "hr/candidates", "transfer", 1, 1, "employment.recruitment", "consent", "", ""},
	}},
	{"accountant", "finance", 0.035, shiftOffice, []actSpec{
		{40, actAccess, "billing/invoices", "query", 10, 3000, "essential.service.payment_processing", "contract", "", ""},
		{25, actAccess, "finance-erp/receivables", "read", 1, 1, "essential.service.payment_processing", "contract", "", ""},
		{15, actAccess, "finance-erp/expenses", "read", 1, 1, "employment.administration", "contract", "", ""},
		{5, actAccess, "billing/invoices", "export", 50, 1200, "legal.compliance", "legal_obligation", "FIN-", ""},
		{2, actPartnerShare, "finance-erp/receivables", "transfer", 20, 600, "", "", "FIN-", "kessler-roth-audit"},
	}},
	{"controller", "finance", 0.015, shiftOffice, []actSpec{
		{60, actAccess, "finance-erp/receivables", "query", 10, 5000, "analytics.reporting", "legitimate_interests", "", ""},
		{20, actAccess, "billing/subscriptions", "query", 100, 9000, "analytics.reporting", "legitimate_interests", "", ""},
		{5, actAccess, "finance-erp/receivables", "export", 100, 1500, "legal.compliance", "legal_obligation", "FIN-", ""},
	}},
	{"account_executive", "sales", 0.09, shiftOffice, []actSpec{
		{45, actAccess, "crm/contacts", "read", 1, 1, "sales.prospecting", "legitimate_interests", "", ""},
		{20, actAccess, "crm/leads", "read", 1, 1, "sales.prospecting", "legitimate_interests", "", ""},
		{15, actAccess, "crm/leads", "update", 1, 1, "sales.prospecting", "legitimate_interests", "", ""},
		{10, actAccess, "sales-engagement/sequences", "read", 1, 1, "sales.prospecting", "legitimate_interests", "", ""},
		{5, actEmailSubject, "crm/leads", "transfer", 1, 1, "sales.prospecting", "legitimate_interests", "", ""},
		{2, actAccess, "crm/contacts", "export", 20, 400, "sales.prospecting", "legitimate_interests", "", ""},
	}},
	{"sales_ops", "sales", 0.02, shiftOffice, []actSpec{
		{50, actAccess, "crm/accounts", "query", 50, 8000, "analytics.reporting", "legitimate_interests", "", ""},
		{20, actAccess, "crm/leads", "update", 1, 1, "sales.prospecting", "legitimate_interests", "", ""},
		{5, actAccess, "crm/accounts", "export", 100, 1500, "analytics.reporting", "legitimate_interests", "", ""},
	}},
	{"care_coordinator", "clinical_operations", 0.06, shiftSupport, []actSpec{
		{45, actAccess, "care-portal/appointments", "read", 1, 1, "essential.service", "explicit_consent", "", ""},
		{25, actAccess, "care-portal/patients", "read", 1, 1, "essential.service", "explicit_consent", "", ""},
		{10, actAccess, "care-portal/appointments", "update", 1, 1, "essential.service", "explicit_consent", "", ""},
		{8, actAccess, "care-portal/lab_results", "read", 1, 1, "essential.service", "explicit_consent", "", ""},
		{6, actEmailSubject, "care-portal/appointments", "transfer", 1, 1, "essential.service", "explicit_consent", "", ""},
		{2, actPartnerShare, "care-portal/lab_results", "transfer", 1, 5, "", "", "", "helix-labs"},
	}},
	{"privacy_officer", "legal", 0.015, shiftOffice, []actSpec{
		{40, actAccess, "consent-manager/preferences", "read", 1, 1, "legal.compliance", "legal_obligation", "DSR-", ""},
		{30, actAccess, "app-db/users", "read", 1, 1, "legal.compliance", "legal_obligation", "DSR-", ""},
		{15, actEmailSubject, "app-db/users", "transfer", 1, 1, "legal.compliance", "legal_obligation", "DSR-", ""},
		{3, actPartnerShare, "app-db/users", "transfer", 1, 3, "", "", "DSR-", "lda-berlin"},
	}},
	{"counsel", "legal", 0.01, shiftOffice, []actSpec{
		{60, actAccess, "document-store/contracts", "read", 1, 1, "legal.compliance", "legal_obligation", "", ""},
		{10, actAccess, "support-desk/tickets", "read", 1, 1, "legal.compliance", "legal_obligation", "", ""},
	}},
	{"logistics_coordinator", "operations", 0.04, shiftOffice, []actSpec{
		{50, actAccess, "logistics/shipments", "read", 1, 1, "essential.service.operations", "contract", "", ""},
		{25, actAccess, "returns/rmas", "read", 1, 1, "essential.service.operations", "contract", "", ""},
		{10, actAccess, "logistics/shipments", "update", 1, 1, "essential.service.operations", "contract", "", ""},
		{3, actAccess, "logistics/shipments", "export", 20, 500, "essential.service.operations", "contract", "", ""},
	}},
}

// serviceSpec is a named service account. share is its share of all
// normal events (0: part of the long tail).
type serviceSpec struct {
	id, role, dept string
	share          float64
	acts           []actSpec
}

// Core services; the remaining service accounts are generated from the
// tail systems.
var serviceSpecs = []serviceSpec{
	{"svc-app-backend", "application", "engineering", 0.30, []actSpec{
		{60, actAccess, "app-db/users", "read", 1, 1, "essential.service", "contract", "", ""},
		{15, actAccess, "app-db/users", "update", 1, 1, "essential.service", "contract", "", ""},
		{10, actAccess, "app-db/addresses", "read", 1, 1, "essential.service", "contract", "", ""},
		{8, actAccess, "app-db/devices", "update", 1, 1, "essential.service", "contract", "", ""},
		{5, actAccess, "app-db/locations", "read", 1, 1, "essential.service", "consent", "", ""},
		{2, actAccess, "identity/accounts", "read", 1, 1, "essential.service", "contract", "", ""},
	}},
	{"svc-identity", "identity_provider", "engineering", 0.06, []actSpec{
		{70, actAccess, "identity/login_events", "update", 1, 1, "essential.service", "contract", "", ""},
		{30, actAccess, "identity/accounts", "read", 1, 1, "essential.service", "contract", "", ""},
	}},
	{"svc-payments", "payments", "finance", 0.04, []actSpec{
		{50, actAccess, "payments-gateway/transactions", "update", 1, 1, "essential.service.payment_processing", "contract", "", ""},
		{25, actAccess, "billing/payment_methods", "read", 1, 1, "essential.service.payment_processing", "contract", "", ""},
		{25, actPartnerShare, "billing/payment_methods", "transfer", 1, 1, "", "", "", "payflux"},
	}},
	{"svc-mailer", "messaging", "marketing", 0.035, []actSpec{
		{45, actEmailSubject, "notifications/outbox", "transfer", 1, 1, "essential.service.notifications", "contract", "", ""},
		{35, actPartnerShare, "notifications/outbox", "transfer", 1, 60, "", "", "", "mailwave"},
		{20, actAccess, "notifications/outbox", "read", 1, 1, "essential.service.notifications", "contract", "", ""},
	}},
	{"svc-analytics-collector", "telemetry", "analytics", 0.05, []actSpec{
		{85, actAccess, "analytics/events", "update", 1, 1, "analytics.reporting", "consent", "", ""},
		{15, actPartnerShare, "analytics/events", "transfer", 20, 400, "", "", "", "acme-analytics"},
	}},
	{"svc-ads-audience-sync", "marketing_integration", "marketing", 0.006, []actSpec{
		{60, actAccess, "marketing-automation/audiences", "query", 100, 5000, "marketing.advertising.third_party", "consent", "", ""},
		{40, actPartnerShare, "marketing-automation/audiences", "transfer", 20, 300, "", "", "", "adnexa"},
	}},
	{"svc-partner-sync", "integration", "operations", 0.006, []actSpec{
		{50, actPartnerShare, "logistics/shipments", "transfer", 10, 300, "", "", "", "shipright-logistics"},
		{25, actAccess, "logistics/shipments", "query", 10, 800, "essential.service.operations", "contract", "", ""},
		{25, actPartnerShare, "crm/accounts", "transfer", 1, 50, "", "", "", "northwind-group-uk"},
	}},
	{"svc-crm-sync", "integration", "sales", 0.03, []actSpec{
		{60, actAccess, "crm/contacts", "update", 1, 1, "essential.service", "contract", "", ""},
		{40, actAccess, "crm/accounts", "read", 1, 1, "essential.service", "contract", "", ""},
	}},
	{"svc-support-bot", "chatbot", "customer_care", 0.03, []actSpec{
		{60, actAccess, "support-desk/tickets", "update", 1, 1, "essential.service.operations.support", "contract", "", ""},
		{40, actAccess, "support-desk/customers", "read", 1, 1, "essential.service.operations.support", "contract", "", ""},
	}},
	{"svc-care-scheduler", "scheduling", "clinical_operations", 0.015, []actSpec{
		{60, actAccess, "care-portal/appointments", "update", 1, 1, "essential.service", "explicit_consent", "", ""},
		{40, actAccess, "care-portal/patients", "read", 1, 1, "essential.service", "explicit_consent", "", ""},
	}},
	{"svc-dwh-etl", "etl", "analytics", 0.004, []actSpec{
		{100, actAccess, "dwh/orders_fact", "update", 100, 3000, "analytics.reporting", "legitimate_interests", "", ""},
	}},
	{"svc-nightly-backup", "backup", "engineering", 0.0005, []actSpec{
		{100, actAccess, "app-db/users", "query", 1, 10, "functional.storage", "legitimate_interests", "", ""},
	}},
}

// Services with an exception in the demo rules: their nightly batch jobs
// export far more than the bulk-export threshold.
const (
	ServiceNightlyBackup = "svc-nightly-backup"
	ServiceDWHETL        = "svc-dwh-etl"
)

// Users and services other than the excepted ones never move more records
// than this in one clock hour (so never twice as much in a sliding hour).
const (
	userHourCap    = 2000
	serviceHourCap = 4000
)

// locationSpec is an office with a fixed UTC offset (the simulated period
// lies before daylight saving time).
type locationSpec struct {
	name     string
	offset   int // hours east of UTC
	weight   float64
	ipPrefix string
}

var locationSpecs = []locationSpec{
	{"Europe/Berlin", 1, 0.45, "10.10."},
	{"Europe/London", 0, 0.20, "10.20."},
	{"Europe/Lisbon", 0, 0.13, "10.40."},
	{"America/New_York", -5, 0.12, "10.30."},
	{"Europe/Warsaw", 1, 0.10, "10.50."},
}

var firstNames = []string{
	"anna", "ben", "clara", "david", "elena", "felix", "greta", "hannah", "ivan", "julia",
	"karim", "lena", "marco", "nina", "oliver", "paula", "quentin", "rosa", "sven", "tara",
	"ulrich", "vera", "william", "xenia", "yusuf", "zoe", "amir", "bianca", "chen", "daria",
	"emil", "fatima", "georg", "helena", "ines", "jonas", "kira", "lukas", "maja", "noah",
	"olga", "pedro", "rahul", "sofia", "tomas", "uma", "viktor", "wanda", "yara", "zeynep",
	"aisha", "bruno", "carla", "dmitri", "eva", "finn", "gabriel", "hugo", "ida", "jan",
}

var lastNames = []string{
	"keller", "schmidt", "novak", "silva", "oconnor", "mueller", "rossi", "kowalski", "smith", "jones",
	"fischer", "weber", "meyer", "wagner", "becker", "hoffmann", "schulz", "koch", "richter", "klein",
	"wolf", "neumann", "schwarz", "braun", "zimmermann", "krueger", "hartmann", "lange", "werner", "krause",
	"lehmann", "walker", "brown", "taylor", "evans", "wilson", "costa", "santos", "pereira", "ferreira",
	"nowak", "wojcik", "kaminski", "lewandowski", "garcia", "martin", "dubois", "laurent", "bianchi", "romano",
	"ahmed", "khan", "patel", "singh", "kim", "lee", "nguyen", "tanaka", "yilmaz", "demir",
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0",
	"SupportDesk-Agent/7.4.2 (Windows 11)",
	"CRM-Desktop/2025.2.1 (macOS 15.3)",
	"internal-console/3.18.0",
	"DBeaver/24.3.4 (Linux; x86_64)",
	"Tableau Desktop 2024.3 (Windows)",
}

// Mail domains of data subjects' own addresses.
var subjectMailDomains = []string{
	"gmail.com", "gmail.com", "gmail.com", "outlook.com", "yahoo.com", "web.de", "gmx.de", "icloud.com", "hotmail.co.uk", "proton.me", "t-online.de", "sapo.pt",
}

var subjectMailCountries = []string{"DE", "DE", "DE", "GB", "PT", "PL", "US", "AT", "NL", "IE"}
