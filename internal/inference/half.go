package inference

import "math"

// 16-bit floats. JSON numbers arrive as decimal text, parsed to float64 and
// rounded once, to nearest even, straight to the 16-bit format (rounding
// through float32 first could round twice and land on the wrong value).

const (
	fp16Exp, fp16Mant = 5, 10
	bf16Exp, bf16Mant = 8, 7
)

// toHalf rounds f to a 16-bit float with expBits exponent and mantBits
// mantissa bits. ok is false when a finite f is too large, which the
// callers report as out of range.
func toHalf(f float64, expBits, mantBits uint) (h uint16, ok bool) {
	b := math.Float64bits(f)
	sign := uint16(b>>48) & 0x8000
	exp := int(b>>52) & 0x7ff
	mant := b & (1<<52 - 1)
	bias := 1<<(expBits-1) - 1
	maxExp := 1<<expBits - 1
	inf := sign | uint16(maxExp)<<mantBits // #nosec G115 -- maxExp < 256
	if exp == 0x7ff {
		if mant != 0 {
			return inf | 1<<(mantBits-1), true // quiet NaN
		}
		return inf, true
	}
	e := exp - 1023 + bias
	if e >= maxExp {
		return inf, false
	}
	var q, rem, half uint64
	if e <= 0 { // subnormal in the 16-bit format, or zero
		shift := uint(52 - int(mantBits) + 1 - e) // #nosec G115 -- e <= 0, so positive
		if shift > 60 {
			return sign, true
		}
		m := mant | 1<<52
		if exp == 0 {
			m = mant // a float64 subnormal is far below any 16-bit subnormal
		}
		q, rem, half = m>>shift, m&(1<<shift-1), 1<<(shift-1)
	} else {
		shift := 52 - mantBits
		q = uint64(e)<<mantBits | mant>>shift // #nosec G115 -- 0 < e < maxExp
		rem, half = mant&(1<<shift-1), 1<<(shift-1)
	}
	if rem > half || (rem == half && q&1 == 1) {
		q++ // may carry into the exponent, up to infinity: that is correct rounding
	}
	h = sign | uint16(q) // #nosec G115 -- q < 1<<15
	return h, h&0x7fff != inf&0x7fff
}

// fromHalf is the exact value of a 16-bit float.
func fromHalf(h uint16, expBits, mantBits uint) float64 {
	bias := 1<<(expBits-1) - 1
	maxExp := uint16(1<<expBits - 1)
	exp := h >> mantBits & maxExp
	mant := h & (1<<mantBits - 1)
	var v float64
	switch exp {
	case 0:
		v = math.Ldexp(float64(mant), 1-bias-int(mantBits))
	case maxExp:
		if mant != 0 {
			v = math.NaN()
		} else {
			v = math.Inf(1)
		}
	default:
		v = math.Ldexp(float64(1<<mantBits|mant), int(exp)-bias-int(mantBits))
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}
