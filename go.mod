module github.com/berth-dev/berth

go 1.26.0

require github.com/urfave/cli/v3 v3.14.0

require golang.org/x/sys v0.50.0
