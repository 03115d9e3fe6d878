package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log/slog"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

var (
	white   = color.RGBA{255, 255, 255, 255}
	black   = color.RGBA{30, 30, 30, 255}
	grey    = color.RGBA{200, 200, 200, 255}
	palette = map[string]color.RGBA{
		"idemlambda":           {0, 114, 178, 255},
		"idemlambda-readfirst": {0, 158, 115, 255},
		"idemlambda-kms":       {204, 121, 167, 255},
		"powertools-ts":        {230, 159, 0, 255},
		"floor":                {120, 120, 120, 255},
		// The Redis sides (-impls idemlambda-redis,floor-redis).
		"idemlambda-redis": {86, 180, 233, 255},
		"floor-redis":      {190, 190, 190, 255},
	}
)

// writeChart draws two panels of grouped bars for one worker: p50 latency
// and write units per invocation, each group a scenario and result size,
// each bar an implementation (log scale; a crossed-out slot marks a failed
// row).
func writeChart(path string, rows []Row) error {
	const w, h = 1280, 900
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	text(img, 20, 24, "idemlambda vs Powertools (TypeScript) vs floor on local dynalite, 1 worker (log scale)", black)

	var impls []string
	seen := map[string]bool{}
	type group struct {
		scenario string
		size     int
	}
	var groups []group
	seenG := map[group]bool{}
	for _, r := range rows {
		if r.Workers != 1 {
			continue
		}
		if !seen[r.Impl] {
			seen[r.Impl] = true
			impls = append(impls, r.Impl)
		}
		g := group{r.Scenario, r.SizeBytes}
		if !seenG[g] {
			seenG[g] = true
			groups = append(groups, g)
		}
	}
	find := func(impl string, g group) *Row {
		for i := range rows {
			r := &rows[i]
			if r.Workers == 1 && r.Impl == impl && r.Scenario == g.scenario && r.SizeBytes == g.size {
				return r
			}
		}
		return nil
	}
	// Legend.
	x := 20
	for _, im := range impls {
		fill(img, image.Rect(x, 40, x+14, 54), palette[im])
		text(img, x+20, 52, im, black)
		x += 40 + 8*len(im)
	}
	panel := func(top int, title, unit string, value func(*Row) (float64, bool)) {
		const left, right, height = 80, 20, 330
		text(img, 20, top-8, title, black)
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, g := range groups {
			for _, im := range impls {
				if r := find(im, g); r != nil {
					if v, ok := value(r); ok && v > 0 {
						lo, hi = math.Min(lo, v), math.Max(hi, v)
					}
				}
			}
		}
		if math.IsInf(lo, 1) {
			return
		}
		lmin, lmax := math.Floor(math.Log10(lo/2)), math.Ceil(math.Log10(hi))
		if lmax == lmin {
			lmax++
		}
		bottom := top + height
		yOf := func(v float64) int {
			return bottom - int(float64(height)*(math.Log10(v)-lmin)/(lmax-lmin))
		}
		for e := lmin; e <= lmax; e++ {
			y := yOf(math.Pow(10, e))
			fill(img, image.Rect(left, y, w-right, y+1), grey)
			text(img, 8, y+4, fmt.Sprintf("%g %s", math.Pow(10, e), unit), black)
		}
		gw := (w - left - right) / len(groups)
		bw := (gw - 20) / len(impls)
		for gi, g := range groups {
			gx := left + gi*gw + 10
			for ii, im := range impls {
				r := find(im, g)
				bx := gx + ii*bw
				if r == nil {
					continue
				}
				v, ok := value(r)
				if !ok || v <= 0 {
					// Failed: an X in the slot.
					for d := 0; d < bw-4; d++ {
						set(img, bx+2+d, bottom-4-d*20/bw, palette[im])
						set(img, bx+2+d, bottom-24+d*20/bw, palette[im])
					}
					continue
				}
				fill(img, image.Rect(bx+2, yOf(v), bx+bw-2, bottom), palette[im])
			}
			text(img, gx, bottom+16, fmt.Sprintf("%s %s", g.scenario, sizeName(g.size)), black)
		}
	}
	panel(110, "p50 latency per invocation", "ms", func(r *Row) (float64, bool) {
		if r.P50Ms == nil {
			return 0, false
		}
		return *r.P50Ms, true
	})
	panel(520, "request units' price per million invocations (WRU $0.625, RRU $0.125 per million)", "$", func(r *Row) (float64, bool) {
		if r.P50Ms == nil {
			return 0, false
		}
		return price(*r), true
	})
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

func set(img *image.RGBA, x, y int, c color.RGBA) {
	for dx := range 2 {
		img.SetRGBA(x+dx, y, c)
	}
}

func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := &font.Drawer{Dst: img, Src: &image.Uniform{c}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
