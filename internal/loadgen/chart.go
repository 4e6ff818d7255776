package loadgen

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colText       = color.RGBA{20, 20, 20, 255}
	colGrid       = color.RGBA{215, 215, 215, 255}
	colParity     = color.RGBA{60, 60, 60, 255}
	colAhead      = color.RGBA{46, 139, 87, 255}
	colBehind     = color.RGBA{205, 70, 60, 255}
	colWhisker    = color.RGBA{30, 30, 30, 255}
	colGoal       = color.RGBA{40, 90, 200, 255}
	colHeading    = color.RGBA{235, 240, 250, 255}
)

// Chart layout, in pixels.
const (
	chartWidth  = 1100
	labelWidth  = 470
	plotRight   = chartWidth - 90
	rowHeight   = 30
	chartTop    = 70
	chartBottom = 50
)

// chartRow is one bar: how many times better than its baseline a figure
// is (lower-is-better figures inverted), the rounds' range, and the goal
// (0: none); or, with adv 0, a section's heading.
type chartRow struct {
	label       string
	adv, lo, hi float64
	goal        float64
}

// chartRows are the local rows (octoserve over the reference), then each
// section's Lead over its baseline.
func (rep Report) chartRows() []chartRow {
	var rows []chartRow
	for _, r := range rep.Rows {
		if adv, lo, hi := r.Advantage(); adv > 0 {
			rows = append(rows, chartRow{label: r.Scenario.Title, adv: adv, lo: lo, hi: hi})
		}
	}
	for _, t := range rep.Sections {
		sec := t.Section
		heading := chartRow{label: fmt.Sprintf("%s: %s / %s", strings.ToUpper(sec.ID), sec.label(sec.Lead), sec.label(sec.Baseline))}
		if sec.Goal > 0 {
			heading.label += fmt.Sprintf(" (goal %s)", num(sec.Goal))
		}
		rows = append(rows, heading)
		for _, r := range t.Rows {
			adv, lo, hi := r.lead(sec).Advantage()
			if adv == 0 {
				continue
			}
			row := chartRow{label: "  " + r.Scenario.Title, adv: adv, lo: lo, hi: hi}
			if sec.hasGoal(r.Scenario.ID) {
				row.goal = sec.Goal
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// WriteChart draws each row's advantage (octoserve over the reference, or
// a section's lead over its baseline) on a log scale, lower-is-better
// figures inverted so that right of 1 is always "better than the
// baseline", with the rounds' spread as a whisker and the goal, if any,
// as a tick.
func (rep Report) WriteChart(w io.Writer, title string) error {
	rows := rep.chartRows()
	height := chartTop + len(rows)*rowHeight + chartBottom
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBackground}, image.Point{}, draw.Src)
	lo, hi := 0.5, 2.0
	for _, r := range rows {
		if r.adv > 0 {
			lo, hi = math.Min(lo, r.lo), math.Max(hi, r.hi)
		}
	}
	lo, hi = math.Pow(2, math.Floor(math.Log2(lo))), math.Pow(2, math.Ceil(math.Log2(hi)))
	x := func(v float64) int {
		f := (math.Log2(v) - math.Log2(lo)) / (math.Log2(hi) - math.Log2(lo))
		return labelWidth + int(f*float64(plotRight-labelWidth))
	}
	plotBottom := chartTop + len(rows)*rowHeight
	text(img, 10, 20, title, colText)
	if len(rep.Rows) > 0 {
		text(img, 10, 40, "Unmarked rows: octoserve / reference registry on local disks; below, each section's lead / its baseline.", colText)
	}
	text(img, 10, 56, "Log scale, lower-is-better figures inverted: right of 1x = better. Bar: median; whisker: rounds; blue tick: goal.", colText)
	for g := lo; g <= hi*1.0001; g *= 2 {
		c := colGrid
		if g == 1 {
			c = colParity
		}
		vline(img, x(g), chartTop-4, plotBottom+4, c)
		text(img, x(g)-12, plotBottom+20, ratioLabel(g), colText)
	}
	for i, r := range rows {
		top := chartTop + i*rowHeight
		mid := top + rowHeight/2
		if r.adv == 0 {
			fill(img, image.Rect(0, top+2, chartWidth, top+rowHeight-2), colHeading)
			text(img, 10, mid+4, r.label, colText)
			continue
		}
		label := r.label
		if len(label) > 64 {
			label = label[:61] + "..."
		}
		text(img, 10, mid+4, label, colText)
		c := colAhead
		if r.adv < 1 || (r.goal > 0 && r.adv < r.goal) {
			c = colBehind
		}
		a, b := x(1), x(r.adv)
		if b < a {
			a, b = b, a
		}
		fill(img, image.Rect(a, top+6, max2(b, a+1), top+rowHeight-6), c)
		hline(img, x(r.lo), x(r.hi), mid, colWhisker)
		vline(img, x(r.lo), mid-5, mid+5, colWhisker)
		vline(img, x(r.hi), mid-5, mid+5, colWhisker)
		if r.goal > 0 {
			fill(img, image.Rect(x(r.goal)-1, top+2, x(r.goal)+2, top+rowHeight-2), colGoal)
		}
		text(img, max2(x(r.hi), x(r.adv))+6, mid+4, fmt.Sprintf("%.2fx", r.adv), colText)
	}
	return png.Encode(w, img)
}

func ratioLabel(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%gx", v)
	}
	return fmt.Sprintf("1/%gx", 1/v)
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func text(img draw.Image, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fill(img draw.Image, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func vline(img draw.Image, x, y0, y1 int, c color.Color) { fill(img, image.Rect(x, y0, x+1, y1), c) }

func hline(img draw.Image, x0, x1, y int, c color.Color) { fill(img, image.Rect(x0, y, x1+1, y+1), c) }
