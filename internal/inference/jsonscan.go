package inference

import (
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a small JSON reader over a byte slice. The request header is
// walked with it once, and tensor data arrays are converted straight into
// the v2 binary layout, so a large JSON tensor never becomes a
// []interface{} (encoding/json would allocate one value per element).
//
// Errors are *Error (400) and name the byte offset, never the content.
type scanner struct {
	buf      []byte
	pos      int
	depth    int
	maxDepth int
	base     int // offset of buf in the body, for messages
}

func (s *scanner) errorf(format string, args ...any) *Error {
	e := badRequest(format, args...)
	e.Msg = "malformed JSON at byte " + itoa(s.base+s.pos) + ": " + e.Msg
	return e
}

// ws skips white space and returns the next byte, 0 at the end.
func (s *scanner) ws() byte {
	for s.pos < len(s.buf) {
		switch c := s.buf[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// consume skips white space and c, reporting whether c was there.
func (s *scanner) consume(c byte) bool {
	if s.ws() == c && s.pos < len(s.buf) {
		s.pos++
		return true
	}
	return false
}

func (s *scanner) expect(c byte) error {
	if !s.consume(c) {
		if s.pos >= len(s.buf) {
			return s.errorf("unexpected end, want %q", c)
		}
		return s.errorf("unexpected %q, want %q", s.buf[s.pos], c)
	}
	return nil
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > s.maxDepth {
		return s.errorf("nested deeper than %d", s.maxDepth)
	}
	return nil
}

// object reads an object, calling field for each key with the scanner
// before the value; field must consume the value.
func (s *scanner) object(field func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	if !s.consume('}') {
		for {
			key, err := s.readString()
			if err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			if err := field(key); err != nil {
				return err
			}
			if s.consume('}') {
				break
			}
			if err := s.expect(','); err != nil {
				return err
			}
		}
	}
	s.depth--
	return nil
}

// array reads an array, calling elem for each element; elem must consume
// it.
func (s *scanner) array(elem func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	if !s.consume(']') {
		for i := 0; ; i++ {
			if err := elem(i); err != nil {
				return err
			}
			if s.consume(']') {
				break
			}
			if err := s.expect(','); err != nil {
				return err
			}
		}
	}
	s.depth--
	return nil
}

// skip reads and discards one value of any type.
func (s *scanner) skip() error {
	switch s.ws() {
	case '{':
		return s.object(func(string) error { return s.skip() })
	case '[':
		return s.array(func(int) error { return s.skip() })
	case '"':
		var err error
		_, err = s.appendString(nil)
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		_, _, err := s.number()
		return err
	}
}

// span reads one value and returns its bytes (a sub-slice of the input).
func (s *scanner) span() ([]byte, error) {
	s.ws()
	start := s.pos
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.buf[start:s.pos], nil
}

func (s *scanner) literal(word string) error {
	s.ws()
	if len(s.buf)-s.pos < len(word) || string(s.buf[s.pos:s.pos+len(word)]) != word {
		return s.errorf("invalid literal")
	}
	s.pos += len(word)
	return nil
}

// boolean reads true or false.
func (s *scanner) boolean() (bool, bool) {
	switch s.ws() {
	case 't':
		return true, s.literal("true") == nil
	case 'f':
		return false, s.literal("false") == nil
	}
	return false, false
}

// number reads a JSON number and returns its text (a sub-slice of the
// input) and whether it is an integer (no fraction, no exponent).
func (s *scanner) number() (num []byte, integer bool, err error) {
	s.ws()
	b, start, i := s.buf, s.pos, s.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		if i >= len(b) {
			return nil, false, s.errorf("unexpected end, want a value")
		}
		s.pos = i
		return nil, false, s.errorf("unexpected %q, want a value", b[i])
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		d := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == d {
			s.pos = i
			return nil, false, s.errorf("no digits after the decimal point")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
		if i == d {
			s.pos = i
			return nil, false, s.errorf("no digits in the exponent")
		}
	}
	s.pos = i
	return b[start:i], integer, nil
}

// readString reads a string value.
func (s *scanner) readString() (string, error) {
	s.ws()
	// Fast path: no escapes, the string is a sub-slice of the input.
	if s.pos < len(s.buf) && s.buf[s.pos] == '"' {
		for i := s.pos + 1; i < len(s.buf); i++ {
			c := s.buf[i]
			if c == '"' {
				raw := s.buf[s.pos+1 : i]
				if !utf8.Valid(raw) {
					break
				}
				s.pos = i + 1
				return string(raw), nil
			}
			if c == '\\' || c < 0x20 {
				break
			}
		}
	}
	b, err := s.appendString(nil)
	return string(b), err
}

// appendString reads a string value and appends its decoded bytes to dst.
// It refuses invalid UTF-8 and control characters, as JSON does.
func (s *scanner) appendString(dst []byte) ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return dst, err
	}
	b := s.buf
	for i := s.pos; ; {
		start := i
		for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 && b[i] < utf8.RuneSelf {
			i++
		}
		dst = append(dst, b[start:i]...)
		if i >= len(b) {
			s.pos = i
			return dst, s.errorf("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			s.pos = i + 1
			return dst, nil
		case c < 0x20:
			s.pos = i
			return dst, s.errorf("control character in string")
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				s.pos = i
				return dst, s.errorf("invalid UTF-8 in string")
			}
			dst = append(dst, b[i:i+n]...)
			i += n
		default: // backslash
			if i+1 >= len(b) {
				s.pos = i
				return dst, s.errorf("unterminated string")
			}
			e := b[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(b[i:])
				if !ok {
					s.pos = i
					return dst, s.errorf("invalid \\u escape")
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok := rune(0), false
					if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
						r2, ok = hex4(b[i+2:])
					}
					r = utf16.DecodeRune(r, r2)
					if !ok || r == utf8.RuneError {
						s.pos = i
						return dst, s.errorf("unpaired UTF-16 surrogate in \\u escape")
					}
					i += 6
				}
				dst = utf8.AppendRune(dst, r)
			default:
				s.pos = i - 1
				return dst, s.errorf("invalid escape \\%c", e)
			}
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// arraySpan finds the end of the array that starts at the scanner and
// returns it (a sub-slice of the input) without converting its elements:
// tensor data is walked once more, by decodeData, which validates every
// element as it converts it; this pass only matches brackets (outside
// strings) and bounds the nesting.
func (s *scanner) arraySpan() ([]byte, error) {
	if s.ws() != '[' {
		return s.span() // not an array: decodeData reports it
	}
	b, start, depth := s.buf, s.pos, 0
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '[', '{':
			if depth++; s.depth+depth > s.maxDepth {
				s.pos = i
				return nil, s.errorf("nested deeper than %d", s.maxDepth)
			}
		case ']', '}':
			if depth--; depth == 0 {
				s.pos = i + 1
				return b[start:s.pos], nil
			}
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	s.pos = len(b)
	return nil, s.errorf("unterminated array")
}

// atEnd skips white space and says whether the input is used up (ws
// alone cannot tell the end from a NUL byte).
func (s *scanner) atEnd() bool {
	s.ws()
	return s.pos >= len(s.buf)
}
