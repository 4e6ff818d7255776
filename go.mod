module github.com/octoserve/octoserve

go 1.25.0

require (
	golang.org/x/crypto v0.59.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
