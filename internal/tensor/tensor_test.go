package tensor

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDatatypeRoundTrip(t *testing.T) {
	t.Parallel()
	for d := Bool; d <= Bytes; d++ {
		got, err := ParseDatatype(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDatatype(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
	}
	for _, s := range []string{"", "fp32", "FLOAT", "INVALID", "STRING"} {
		if _, err := ParseDatatype(s); !errors.Is(err, ErrDatatype) {
			t.Errorf("ParseDatatype(%q) error = %v, want ErrDatatype", s, err)
		}
	}
}

func TestElementCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		shape   []int64
		want    int64
		wantErr error
	}{
		{shape: nil, want: 1},
		{shape: []int64{0, 5}, want: 0},
		{shape: []int64{1, 3, 224, 224}, want: 150528},
		{shape: []int64{-1}, wantErr: ErrShape},
		{shape: []int64{math.MaxInt64, 2}, wantErr: ErrShape},
		{shape: []int64{1 << 31, 1 << 31, 1 << 31}, wantErr: ErrShape},
		{shape: []int64{0, math.MaxInt64, math.MaxInt64}, want: 0},
	}
	for _, tt := range tests {
		got, err := ElementCount(tt.shape)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ElementCount(%v) = %d, %v; want %d, %v", tt.shape, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	two, _ := AppendBytesElement(nil, []byte("ab"))
	two, _ = AppendBytesElement(two, nil)
	tests := []struct {
		name    string
		t       Tensor
		wantErr error
	}{
		{"fp32 ok", Tensor{Datatype: FP32, Shape: []int64{2, 2}, Data: make([]byte, 16)}, nil},
		{"scalar", Tensor{Datatype: Int64, Data: make([]byte, 8)}, nil},
		{"short", Tensor{Datatype: FP32, Shape: []int64{2, 2}, Data: make([]byte, 15)}, ErrDataSize},
		{"long", Tensor{Datatype: Uint8, Shape: []int64{3}, Data: make([]byte, 4)}, ErrDataSize},
		{"no datatype", Tensor{Shape: []int64{1}, Data: make([]byte, 1)}, ErrDatatype},
		{"bad shape", Tensor{Datatype: FP64, Shape: []int64{-2}}, ErrShape},
		{"bytes ok", Tensor{Datatype: Bytes, Shape: []int64{2}, Data: two}, nil},
		{"bytes count", Tensor{Datatype: Bytes, Shape: []int64{3}, Data: two}, ErrDataSize},
		{"bytes overrun", Tensor{Datatype: Bytes, Shape: []int64{1}, Data: []byte{9, 0, 0, 0, 'a'}}, ErrDataSize},
		{"bytes stub", Tensor{Datatype: Bytes, Shape: []int64{1}, Data: []byte{1, 0}}, ErrDataSize},
	}
	for _, tt := range tests {
		if err := tt.t.Validate(); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Validate() = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestBytesElements(t *testing.T) {
	t.Parallel()
	var data []byte
	want := [][]byte{[]byte("hello"), {}, []byte("\x00\xff")}
	for _, e := range want {
		data, _ = AppendBytesElement(data, e)
	}
	got, err := BytesElements(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); diff != "" {
		t.Errorf("BytesElements (-want +got):\n%s", diff)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add(uint8(Bytes), int64(2), []byte{2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0})
	f.Add(uint8(FP32), int64(1), []byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, dt uint8, n int64, data []byte) {
		tt := Tensor{Datatype: Datatype(dt), Shape: []int64{n}, Data: data}
		if err := tt.Validate(); err != nil {
			return
		}
		if tt.Datatype == Bytes {
			elems, err := BytesElements(data)
			if err != nil || int64(len(elems)) != n {
				t.Fatalf("valid BYTES tensor: %d elements, %v; want %d", len(elems), err, n)
			}
		}
	})
}
