module github.com/custos-privacy/custos

go 1.26.8
