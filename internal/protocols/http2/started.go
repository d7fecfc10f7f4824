package http2

// StartedStream returns the record of open stream id once the Sink was
// told of it (Started), or nil: what reads the connection's events may
// learn of a stream by its id (which goroutine of a Go server serves it)
// and find its exchange, and the Tag given to it, here. The record is the
// parser's: good until the next Feed or Close, and not to be changed but
// for its Tag.
func (c *Conn) StartedStream(id uint32) *Exchange {
	st := c.get(id)
	if st == nil || !st.started {
		return nil
	}
	return &st.x
}
