// Command summarize reads `go test -bench` output on stdin and prints, for
// every benchmark family that has a "bare" baseline, each variant's median
// ns/op, its overhead over the baseline and the ratio, as a Markdown table.
// Ratios from one run are comparable even on noisy machines; absolute
// numbers are not.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var line = regexp.MustCompile(`^(Benchmark[^\s]+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op`)

func main() {
	runs := map[string][]float64{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			runs[m[1]] = append(runs[m[1]], v)
		}
	}
	names := make([]string, 0, len(runs))
	for n := range runs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("| benchmark | median ns/op | overhead vs bare | ratio |")
	fmt.Println("|---|---:|---:|---:|")
	for _, n := range names {
		family, _, ok := strings.Cut(n, "/")
		base, hasBase := runs[family+"/bare"]
		if !ok || !hasBase {
			fmt.Printf("| %s | %.0f | | |\n", n, median(runs[n]))
			continue
		}
		b, v := median(base), median(runs[n])
		fmt.Printf("| %s | %.0f | %+.0f ns | %.2f× |\n", n, v, v-b, v/b)
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
