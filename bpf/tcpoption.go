package bpf

import "fmt"

// TCPOptionCounters count what context propagation in TCP header options
// did (context_propagation: tcp; headers/tcp_option.h), summed over CPUs.
type TCPOptionCounters struct {
	Sent      uint64 // options written into the segment of a request's first byte
	NoRoom    uint64 // requests whose segment had no room left for the option (SACK blocks)
	Misplaced uint64 // requests whose first byte did not begin a segment: not carried
	Busy      uint64 // requests written while the previous one still waited for its segment
	Received  uint64 // options received
	Matched   uint64 // received contexts a read began at: server spans made children
}

// TCPOptionCounters reads the counters.
func (t *Tracer) TCPOptionCounters() (TCPOptionCounters, error) {
	var c TCPOptionCounters
	for i, dst := range map[tracerTcpCounter]*uint64{
		tracerTcpCounterTCP_OPT_SENT: &c.Sent, tracerTcpCounterTCP_OPT_NO_ROOM: &c.NoRoom,
		tracerTcpCounterTCP_OPT_MISPLACED: &c.Misplaced, tracerTcpCounterTCP_OPT_BUSY: &c.Busy,
		tracerTcpCounterTCP_OPT_RECEIVED: &c.Received, tracerTcpCounterTCP_OPT_MATCHED: &c.Matched,
	} {
		var perCPU []uint64
		if err := t.objs.TcpCounters.Lookup(uint32(i), &perCPU); err != nil {
			return c, fmt.Errorf("reading TCP option counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return c, nil
}
