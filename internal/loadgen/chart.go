package loadgen

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

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

// WriteChart draws each row's advantage (octoserve over the reference, on
// a log scale, lower-is-better figures inverted so that right of 1 is
// always "octoserve ahead") with the rounds' spread as a whisker.
func (rep Report) WriteChart(w io.Writer, title string) error {
	var rows []Row
	for _, r := range rep.Rows {
		if adv, _, _ := r.Advantage(); adv > 0 {
			rows = append(rows, r)
		}
	}
	height := chartTop + len(rows)*rowHeight + chartBottom
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBackground}, image.Point{}, draw.Src)
	lo, hi := 0.5, 2.0
	for _, r := range rows {
		_, min, max := r.Advantage()
		lo, hi = math.Min(lo, min), math.Max(hi, max)
	}
	lo, hi = math.Pow(2, math.Floor(math.Log2(lo))), math.Pow(2, math.Ceil(math.Log2(hi)))
	x := func(v float64) int {
		f := (math.Log2(v) - math.Log2(lo)) / (math.Log2(hi) - math.Log2(lo))
		return labelWidth + int(f*float64(plotRight-labelWidth))
	}
	plotBottom := chartTop + len(rows)*rowHeight
	text(img, 10, 20, title, colText)
	text(img, 10, 40, "octoserve / reference registry, log scale; lower-is-better figures inverted: right of 1x = octoserve ahead.", colText)
	text(img, 10, 56, "Bar: median ratio; whisker: lowest and highest round.", colText)
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
		adv, min, max := r.Advantage()
		label := r.Scenario.Title
		if len(label) > 64 {
			label = label[:61] + "..."
		}
		text(img, 10, mid+4, label, colText)
		c := colAhead
		if adv < 1 {
			c = colBehind
		}
		a, b := x(1), x(adv)
		if b < a {
			a, b = b, a
		}
		fill(img, image.Rect(a, top+6, max2(b, a+1), top+rowHeight-6), c)
		hline(img, x(min), x(max), mid, colWhisker)
		vline(img, x(min), mid-5, mid+5, colWhisker)
		vline(img, x(max), mid-5, mid+5, colWhisker)
		text(img, max2(x(max), x(adv))+6, mid+4, fmt.Sprintf("%.2fx", adv), colText)
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
