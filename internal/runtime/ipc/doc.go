// Package ipc is the framed binary protocol between the supervisor and a
// sandboxed runtime worker, spoken over one unix stream socket (a
// socketpair whose child end the worker inherits).
//
// Every frame is
//
//	[u32 length][u8 type][u64 request id][payload]
//
// little-endian, where length counts the type, id and payload. Tensors are
// written with writev (net.Buffers) so their bytes are never copied into a
// frame buffer, and read into one buffer per frame, the tensors' Data being
// sub-slices of it. Frames are bounded (Options.MaxFrameBytes) both ways.
//
// The Client multiplexes concurrent requests over the one connection by
// request id. The package owns the wire format and the request bookkeeping;
// it never interprets tensors beyond checking that they are well formed,
// and it never logs their contents.
package ipc
