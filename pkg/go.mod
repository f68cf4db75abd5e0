module github.com/wardsec/ward/pkg

go 1.26.7
