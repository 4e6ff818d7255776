module github.com/octoserve/octoserve

go 1.26.0

require gopkg.in/yaml.v3 v3.0.1

require golang.org/x/crypto v0.59.0

require golang.org/x/image v0.48.0
