package inference

import (
	"math"
	"testing"
)

func TestToHalf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f      float64
		fp16   uint16
		fp16ok bool
		bf16   uint16
	}{
		{0, 0x0000, true, 0x0000},
		{math.Copysign(0, -1), 0x8000, true, 0x8000},
		{1, 0x3c00, true, 0x3f80},
		{-2, 0xc000, true, 0xc000},
		{0.1, 0x2e66, true, 0x3dcd},
		{65504, 0x7bff, true, 0x4780},
		{65519.99, 0x7bff, true, 0x4780},
		{65520, 0x7c00, false, 0x4780},
		{math.Pow(2, -24), 0x0001, true, 0x3380},       // smallest FP16 subnormal
		{math.Pow(2, -25), 0x0000, true, 0x3300},       // a tie, to even: zero
		{1.5 * math.Pow(2, -24), 0x0002, true, 0x33c0}, // a tie, to even: 2
		{math.Pow(2, -14), 0x0400, true, 0x3880},       // smallest FP16 normal
		{1 + math.Pow(2, -11), 0x3c00, true, 0x3f80},   // a tie, to even: 1
		{1 + 3*math.Pow(2, -11), 0x3c02, true, 0x3f80},
		{math.Inf(1), 0x7c00, true, 0x7f80},
		{math.Inf(-1), 0xfc00, true, 0xff80},
		{1e300, 0x7c00, false, 0x7f80},
		{5e-324, 0x0000, true, 0x0000},
	}
	for _, tc := range tests {
		if got, ok := toHalf(tc.f, fp16Exp, fp16Mant); got != tc.fp16 || ok != tc.fp16ok {
			t.Errorf("toHalf(%g) FP16 = %#04x, %v; want %#04x, %v", tc.f, got, ok, tc.fp16, tc.fp16ok)
		}
		if got, _ := toHalf(tc.f, bf16Exp, bf16Mant); got != tc.bf16 {
			t.Errorf("toHalf(%g) BF16 = %#04x, want %#04x", tc.f, got, tc.bf16)
		}
	}
	if h, _ := toHalf(math.NaN(), fp16Exp, fp16Mant); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("toHalf(NaN) = %#04x, want a NaN", h)
	}
}

// Every finite 16-bit value survives fromHalf then toHalf, and for BF16
// agrees with float32's own conversion.
func TestHalfRoundTrip(t *testing.T) {
	t.Parallel()
	for h := range 1 << 16 {
		h := uint16(h)
		for _, f := range []struct{ e, m uint }{{fp16Exp, fp16Mant}, {bf16Exp, bf16Mant}} {
			v := fromHalf(h, f.e, f.m)
			if math.IsNaN(v) {
				continue
			}
			if got, _ := toHalf(v, f.e, f.m); got != h {
				t.Fatalf("toHalf(fromHalf(%#04x)) = %#04x (exp bits %d)", h, got, f.e)
			}
		}
		if v := fromHalf(h, bf16Exp, bf16Mant); !math.IsNaN(v) && math.Float32bits(float32(v)) != uint32(h)<<16 {
			t.Fatalf("fromHalf BF16 %#04x = %g, want float32 bits %#08x", h, v, uint32(h)<<16)
		}
	}
}
