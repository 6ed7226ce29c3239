package manifest

import (
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// BenchmarkLoad measures a full Load (YAML, interpolation, schema,
// normalisation, semantic checks) of the Proxmox fixture and reports it as
// a ratio to parsing the same bytes with yaml.v3 alone: the cost of
// validation on top of reading, independent of the machine's speed.
func BenchmarkLoad(b *testing.B) {
	file := fixtureDir + "/valid-proxmox.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	env := fixtureEnv()
	const rounds = 200
	parse := func() time.Duration {
		start := time.Now()
		for i := 0; i < rounds; i++ {
			var n yaml.Node
			if err := yaml.Unmarshal(data, &n); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	load := func() time.Duration {
		start := time.Now()
		for i := 0; i < rounds; i++ {
			if _, err := Load(file, LoadOptions{Environ: env}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	load() // warm the compiled schema
	b.ResetTimer()
	var p, l time.Duration
	for i := 0; i < b.N; i++ {
		p += parse()
		l += load()
	}
	b.ReportMetric(float64(l)/float64(p), "load/yaml-parse")
	b.ReportMetric(float64(l.Microseconds())/float64(rounds*b.N), "µs/load")
}
