package redis

// pending is a command waiting for its reply, or for its transaction to
// end.
type pending struct {
	r   Record
	cmd *command
	// arg is the SELECT index or the HELLO version (0: none; -1: not a
	// valid one), or the confirmations a pub/sub command waits for (0:
	// one per subscription of its kind, counted when they begin).
	arg int64
	got int64 // confirmations read

	answered bool // its reply was read (or will not come: noReply)
	held     bool // answered inside MULTI: reported when the transaction ends
	queued   bool // the reply was +QUEUED: EXEC's array holds its result
	execOK   bool // its result in EXEC's array was a success status
	noReply  bool // the server does not reply to it (CLIENT REPLY OFF or SKIP)
	unsure   bool // CLIENT REPLY OFF or SKIP: no reply, unless it fails

	// dropped counts the commands dropped after this one while the queue
	// was full: their replies follow this one's and are discarded.
	dropped uint32
}

// queue holds commands in the order they were sent, which is the order
// replies come in. It reuses its backing array.
type queue struct {
	q           []pending
	qHead       int    // q[qHead:] are waiting
	ans         int    // q[qHead:ans] are answered
	skipReplies uint32 // replies to come that answer dropped commands
}

func (q *queue) reset() {
	clear(q.q)
	q.q, q.qHead, q.ans, q.skipReplies = q.q[:0], 0, 0, 0
}

// push queues a command. It returns nil when the queue is full: the
// command is then dropped, counted in the entry before it.
func (c *Conn) push(p *pending) *pending {
	n := len(c.q) - c.qHead
	if n >= maxPending {
		return c.overflow(p)
	}
	if len(c.q) == cap(c.q) && c.qHead > 0 {
		copy(c.q, c.q[c.qHead:])
		clear(c.q[n:])
		c.q = c.q[:n]
		c.ans -= c.qHead
		c.execCur -= c.qHead
		c.execEnd -= c.qHead
		c.qHead = 0
	}
	if c.q == nil {
		c.q = make([]pending, 0, 4)
	}
	c.q = append(c.q, *p)
	return &c.q[len(c.q)-1]
}

// overflow drops a command that finds the queue full. Its reply can be
// stepped over only if it has exactly one reply and no effect on the
// replies after it; otherwise nothing after it can be paired for sure.
func (c *Conn) overflow(p *pending) *pending {
	c.fail(&c.stats.Overflow, reasonOverflow)
	last := &c.q[len(c.q)-1]
	if p.cmd.kind != kPlain || p.noReply || p.unsure || c.qTx || c.qReply != replyOn ||
		last.noReply || last.unsure || last.answered {
		c.cmdLost = true
		c.streams[Outbound].st = sLost
		return nil
	}
	last.dropped++
	return nil
}

// peek returns the index of the command the next reply answers, passing
// over those the server does not answer, or -1. It changes nothing, and
// stops at a CLIENT REPLY whose success is not known yet.
func (c *Conn) peek() int {
	for i := c.ans; i < len(c.q); i++ {
		p := &c.q[i]
		switch {
		case p.unsure:
			return -1
		case p.answered || p.noReply:
			continue
		}
		return i
	}
	return -1
}

// target returns the command a reply answers, passing over those the
// server does not answer, or nil. isErr says the reply is an error: after
// a CLIENT REPLY OFF or SKIP, it may be CLIENT REPLY's own error or the
// reply of a later command, which cannot be told apart.
func (c *Conn) target(isErr bool) *pending {
	for ; c.ans < len(c.q); c.ans++ {
		p := &c.q[c.ans]
		if p.unsure {
			if isErr {
				c.ambiguous()
				return nil
			}
			// A failed CLIENT REPLY would have answered with an error
			// before anything else: it succeeded.
			p.unsure, p.noReply = false, true
		}
		if p.noReply {
			c.passOver(p)
			continue
		}
		if !p.answered {
			return p
		}
	}
	return nil
}

// passOver counts a command the server did not answer as answered.
func (c *Conn) passOver(p *pending) {
	if p.answered {
		return
	}
	p.answered = true
	switch p.cmd.kind {
	case kSelect:
		// It may have changed the database: nothing says whether it did.
		c.dbKnown = false
	case kReset:
		// It may have reset the connection. Only its database and its
		// protocol can change, on a connection in none of the modes it
		// ends: the database is then unknown, and RESP2 stays RESP2.
		if c.proto != 2 || c.inTx || c.subscribed() || c.monitor {
			c.ambiguous()
			return
		}
		c.dbKnown = false
	}
}

// answered marks the command at the front of the unanswered ones as
// answered, and reports what can be.
func (c *Conn) answered(p *pending) {
	p.answered = true
	c.skipReplies += p.dropped
	p.dropped = 0
	for c.ans < len(c.q) && c.q[c.ans].answered {
		c.ans++
	}
	c.flush()
}

// flush reports the commands at the front of the queue that are done.
func (c *Conn) flush() {
	for c.qHead < len(c.q) {
		p := &c.q[c.qHead]
		if !p.answered || p.held {
			break
		}
		c.qHead++
		if p.noReply {
			c.fail(&c.stats.Suppressed, reasonSuppressed)
		} else if c.h != nil {
			c.h.Done(&p.r)
		}
		*p = pending{} // let go of its strings
	}
	if c.qHead == len(c.q) {
		c.q, c.qHead, c.ans = c.q[:0], 0, 0
	}
	c.stopIfDrained()
}

// closeQueue reports every command still waiting when the connection
// closes: those inside an unfinished transaction with their +QUEUED
// reply, the others without a reply.
func (c *Conn) closeQueue() {
	for i := c.qHead; i < len(c.q); i++ {
		p := &c.q[i]
		switch {
		case p.noReply || p.unsure:
			p.noReply = true
		case !p.answered:
			p.r.ResponseStart, p.r.ResponseEnd = 0, 0
			p.r.Namespace = c.namespace()
			if p.cmd.kind == kSelect {
				c.dbKnown = false // whether it ran is not known
			}
		}
		p.answered, p.held = true, false
	}
	c.ans = len(c.q)
	c.cmdLost = false // every command seen is reported: nothing to stop
	c.flush()
}
