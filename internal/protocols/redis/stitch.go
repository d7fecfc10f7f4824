package redis

import (
	"strconv"
	"strings"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// command queues a command the client sent.
func (c *Conn) command(s *scanner, ts uint64) {
	if s.n <= 0 {
		return // an empty line or array: Redis ignores it, and does not reply
	}
	if c.cmdLost || c.dead {
		c.fail(&c.stats.Unreported, reasonUnreported)
		return
	}
	p := pending{cmd: c.name(s)}
	switch k := p.cmd.kind; {
	case k == kSelect:
		p.arg = -1
		if v, ok := s.args[1].integer(); ok && s.n == 2 && v >= 0 && v <= maxDB {
			p.arg = v
		}
	case k == kHello && s.n > 1:
		p.arg = -1
		if v, ok := s.args[1].integer(); ok && (v == 2 || v == 3) {
			p.arg = v
		}
	case k.pubsub():
		p.arg = s.n - 1
	case k == kSync:
		// The reply is a replication stream, not RESP: nothing after
		// it can be paired.
		c.fail(&c.stats.Unreported, reasonUnreported)
		c.cmdLost = true
		s.st = sLost
		c.stopIfDrained()
		return
	}
	if !c.replyModel(&p, s) {
		return
	}
	x := &p.r
	x.Role = RoleClient
	x.RequestStart, x.RequestEnd = s.start, max(ts, s.start)
	x.Tid, x.Chosen = s.tid, s.chosen
	x.System = semconv.Redis
	x.Operation = p.cmd.name
	x.Summary = p.cmd.name
	x.QueryText = c.queryText(p.cmd, s.n)
	q := c.push(&p)
	if q != nil && !q.noReply && !q.unsure && c.h != nil {
		c.h.Started(&q.r.Exchange)
	}
	switch p.cmd.kind {
	case kMulti:
		c.qTx = true
	case kExec, kDiscard, kReset:
		c.qTx = false
	}
}

// name finds the command a message names. The name and subcommand must
// have been kept whole to be known.
func (c *Conn) name(s *scanner) *command {
	if !s.args[0].whole() {
		return otherCommand
	}
	var sub []byte
	if s.n > 1 && s.args[1].whole() {
		sub = s.args[1].bytes()
	}
	return lookup(s.args[0].bytes(), sub)
}

// replyModel decides whether the server will reply to p, following CLIENT
// REPLY as the server does. It returns false when the connection can no
// longer be followed exactly: pairing stopped.
func (c *Conn) replyModel(p *pending, s *scanner) bool {
	k := p.cmd.kind
	on, off, skip := false, false, false
	if k == kClientReply && s.n == 3 {
		on, off, skip = s.args[2].is("ON"), s.args[2].is("OFF"), s.args[2].is("SKIP")
	}
	switch c.qReply {
	case replyOff:
		// Only CLIENT REPLY ON and RESET are answered.
		if on || k == kReset {
			c.qReply = replyOn
		} else {
			p.noReply = true
		}
	case replySkip:
		// The next command is not answered, whatever it is, except
		// CLIENT REPLY ON, which turns replies on before answering.
		c.qReply = replyOn
		switch {
		case on:
		case off:
			p.noReply, c.qReply = true, replyOff
		case skip:
			p.noReply, c.qReply = true, replySkip
		default:
			p.noReply = true
		}
	default:
		if off || skip {
			// Inside a transaction it would suppress part of EXEC's
			// array; on a subscribed connection it may be refused.
			if c.qTx || c.subscribedOrSubscribing() {
				c.ambiguous()
				return false
			}
			p.unsure = true
			c.qReply = replyOff
			if skip {
				c.qReply = replySkip
			}
		}
	}
	if k.pubsub() && c.replyUnsure() {
		// Its confirmations could not tell CLIENT REPLY's success.
		c.ambiguous()
		return false
	}
	if p.noReply && k != kPlain && k != kClientReply && k != kSelect && k != kReset {
		// A transaction, a subscription or a protocol switch whose
		// outcome is not seen.
		c.ambiguous()
		return false
	}
	return true
}

// replyUnsure says whether a CLIENT REPLY OFF or SKIP waits to be known
// as a success.
func (c *Conn) replyUnsure() bool {
	for i := c.ans; i < len(c.q); i++ {
		if c.q[i].unsure {
			return true
		}
	}
	return false
}

// subscribedOrSubscribing says whether the connection is subscribed, or
// may be once the commands waiting are answered.
func (c *Conn) subscribedOrSubscribing() bool {
	if c.subscribed() {
		return true
	}
	for i := c.qHead; i < len(c.q); i++ {
		if c.q[i].cmd.kind.pubsub() {
			return true
		}
	}
	return false
}

// subscribed says whether the connection has a subscription: in RESP2 it
// then reads only pub/sub commands, and may receive messages.
func (c *Conn) subscribed() bool { return c.ch+c.pat+c.sh > 0 }

// queryText is db.query.text: the command's name and a "?" for each
// argument, when the options ask for it. Arguments are never written: any
// of them may be a value.
func (c *Conn) queryText(cmd *command, n int64) string {
	if c.opts == nil || !c.opts.QueryText || cmd == otherCommand {
		return ""
	}
	args := max(0, n-int64(cmd.words))
	for i := range c.texts {
		if t := &c.texts[i]; t.cmd == cmd && t.args == args {
			return t.text
		}
	}
	var b strings.Builder
	b.Grow(len(cmd.name) + 2*int(min(args, maxQueryArgs)) + 4)
	b.WriteString(cmd.name)
	for range min(args, maxQueryArgs) {
		b.WriteString(" ?")
	}
	if args > maxQueryArgs {
		b.WriteString(" ...")
	}
	t := &c.texts[c.textNext]
	c.textNext = (c.textNext + 1) % len(c.texts)
	*t = queryText{cmd: cmd, args: args, text: b.String()}
	return t.text
}

// Pub/sub names: the first element of a message or a confirmation.
const (
	psNone kind = iota
	psMessage
)

// pubsubName reads the first element of an array or push of n elements
// as a pub/sub message kind or a confirmation, which it returns as the
// kind of the command it confirms.
func pubsubName(s *scanner) kind {
	if s.argTyp[0] != '$' || (s.n != 3 && s.n != 4) {
		return psNone
	}
	name := &s.args[0]
	switch {
	case s.n == 3 && (name.is("message") || name.is("smessage")), s.n == 4 && name.is("pmessage"):
		return psMessage
	case s.n != 3:
		return psNone
	case name.is("subscribe"):
		return kSubscribe
	case name.is("psubscribe"):
		return kPSubscribe
	case name.is("ssubscribe"):
		return kSSubscribe
	case name.is("unsubscribe"):
		return kUnsubscribe
	case name.is("punsubscribe"):
		return kPUnsubscribe
	case name.is("sunsubscribe"):
		return kSUnsubscribe
	}
	return psNone
}

// replyBegins is told the type of a reply as soon as it is read: an array
// answering EXEC is followed element by element.
func (c *Conn) replyBegins(s *scanner) {
	if !c.inTx || s.top != '*' || c.dead {
		return
	}
	i := c.peek()
	if i < 0 || c.q[i].cmd.kind != kExec {
		return
	}
	c.execOn, c.execEnd, c.execMismatch = true, i, false
	c.execCur = i
	for c.execCur > c.qHead && c.q[c.execCur-1].held {
		c.execCur--
	}
}

// element is told of each element of a top-level reply: those of EXEC's
// array are the results of the queued commands, in order.
func (c *Conn) element(s *scanner, typ byte, scalar bool) {
	if !c.execOn {
		return
	}
	for c.execCur < c.execEnd && !c.q[c.execCur].queued {
		c.execCur++
	}
	if c.execCur >= c.execEnd {
		c.execMismatch = true
		return
	}
	p := &c.q[c.execCur]
	c.execCur++
	switch {
	case typ == '-' || typ == '!':
		setError(&p.r, s.cur.bytes())
	case scalar && typ == '+':
		p.execOK = true
	}
}

// reply pairs a reply with its command, or sets aside out-of-band data.
func (c *Conn) reply(s *scanner, ts uint64) {
	execOn := c.execOn
	c.execOn = false
	if c.dead {
		return
	}
	switch {
	case s.top == '>':
		// A push is never a reply, but subscription confirmations
		// answer the commands that asked for them.
		if k := pubsubName(s); k > psMessage && c.confirms(k) {
			c.confirmation(s, ts)
			return
		}
		c.stats.OutOfBand++
		return
	case s.top == '*' && c.proto == 2:
		switch k := pubsubName(s); {
		case k == psMessage && c.subscribed():
			c.stats.OutOfBand++
			return
		case k > psMessage && c.confirms(k):
			c.confirmation(s, ts)
			return
		case k > psMessage && c.subscribed():
			c.stats.OutOfBand++ // sent by the server on its own (a shard moved)
			return
		}
	case s.top == '+' && c.monitor && monitorLine(&s.val):
		c.stats.OutOfBand++
		return
	}
	if c.skipReplies > 0 {
		c.skipReplies--
		return
	}
	isErr := s.top == '-' || s.top == '!'
	p := c.target(isErr)
	switch {
	case c.dead:
		return
	case p == nil && c.cmdLost:
		c.stop() // the reply of a command that was not seen
		return
	case p == nil:
		c.fail(&c.stats.Unmatched, reasonUnmatched)
		c.stop()
		return
	}
	c.answer(p, s, ts, isErr, execOn)
}

// confirms says whether the command the next reply answers is one that a
// confirmation of kind k answers.
func (c *Conn) confirms(k kind) bool {
	i := c.peek()
	return i >= 0 && c.q[i].cmd.kind == k
}

// confirmation takes one subscription confirmation: the command is
// answered once it has one per channel or pattern it named, or, when it
// named none, one per subscription of its kind (one if there was none).
func (c *Conn) confirmation(s *scanner, ts uint64) {
	p := c.target(false)
	if c.dead {
		return
	}
	count, ok := s.args[2].integer()
	if p == nil || s.argTyp[2] != ':' || !ok || count < 0 {
		c.ambiguous()
		return
	}
	if p.got == 0 {
		p.r.ResponseStart = max(s.start, p.r.RequestStart)
		p.r.Namespace = c.namespace()
		if p.arg == 0 {
			p.arg = max(1, c.subscriptions(p.cmd.kind))
		}
	}
	switch p.cmd.kind {
	case kSubscribe, kUnsubscribe:
		c.ch = count - c.pat
	case kPSubscribe, kPUnsubscribe:
		c.pat = count - c.ch
	default:
		c.sh = count
	}
	if c.ch < 0 || c.pat < 0 {
		c.ambiguous() // counts that do not add up: not the server's
		return
	}
	p.got++
	p.r.ResponseEnd = max(ts, p.r.ResponseStart)
	if p.got >= p.arg {
		c.answered(p)
	}
}

// subscriptions is the number of subscriptions an unsubscribing command of
// kind k ends when it names none.
func (c *Conn) subscriptions(k kind) int64 {
	switch k {
	case kUnsubscribe:
		return c.ch
	case kPUnsubscribe:
		return c.pat
	case kSUnsubscribe:
		return c.sh
	}
	return 0
}

// monitorLine says whether a status reply is a line of MONITOR's stream:
// "<seconds>.<microseconds> [<db> <client>] ...".
func monitorLine(it *item) bool {
	b := it.bytes()
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != '.' {
		return false
	}
	j := i + 1
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	return j > i+1 && j+1 < len(b) && b[j] == ' ' && b[j+1] == '['
}

// answer pairs a reply that is not a confirmation with p.
func (c *Conn) answer(p *pending, s *scanner, ts uint64, isErr, exec bool) {
	x := &p.r
	// Times never run backwards, whatever the clocks of the segments.
	x.ResponseStart = max(s.start, x.RequestStart)
	x.ResponseEnd = max(ts, x.ResponseStart)
	x.Namespace = c.namespace()
	if isErr {
		setError(x, s.val.bytes())
	}
	k := p.cmd.kind
	if c.inTx {
		c.answerInTx(p, s, isErr, exec)
		return
	}
	switch {
	case isErr:
	case k == kSelect:
		if p.arg >= 0 {
			c.setDB(p.arg)
		} else {
			c.dbKnown = false
		}
	case k == kHello:
		if p.arg > 0 {
			c.proto = int(p.arg)
		}
	case k == kMulti:
		c.inTx = true
	case k == kReset:
		c.resetDone()
	case k == kMonitor:
		c.monitor = true
	case k == kExec, k == kDiscard, k.pubsub():
		// EXEC or DISCARD without MULTI fail; a pub/sub command is
		// answered by confirmations. Anything else is not Redis.
		c.ambiguous()
		return
	}
	c.answered(p)
}

// answerInTx pairs a reply read inside a transaction: commands are queued
// (or refused) until EXEC or DISCARD.
func (c *Conn) answerInTx(p *pending, s *scanner, isErr, exec bool) {
	switch p.cmd.kind {
	case kExec:
		c.execDone(p, s, isErr, exec)
		return
	case kDiscard:
		if isErr {
			c.ambiguous() // refused: whether the transaction stays open is not said
			return
		}
		c.endTx(p, false)
	case kReset:
		if isErr {
			c.ambiguous()
			return
		}
		c.endTx(p, false)
		c.resetDone()
	default:
		p.held = true
		switch {
		case isErr:
			// Refused (an unknown command, MULTI or WATCH inside MULTI):
			// the transaction goes on.
		case s.top == '+' && s.val.is("QUEUED"):
			p.queued = true
			if k := p.cmd.kind; k != kPlain && k != kSelect {
				// A subscription or a protocol switch inside a
				// transaction changes EXEC's array.
				c.ambiguous()
				return
			}
		case p.cmd.name == "QUIT":
			// Run at once: the server closes the connection.
		default:
			c.ambiguous()
			return
		}
	}
	c.answered(p)
}

// execComplete says whether EXEC's array held exactly one result per
// queued command.
func (c *Conn) execComplete() bool {
	for c.execCur < c.execEnd && !c.q[c.execCur].queued {
		c.execCur++
	}
	return !c.execMismatch && c.execCur == c.execEnd
}

// execDone ends a transaction with EXEC's reply.
func (c *Conn) execDone(p *pending, s *scanner, isErr, exec bool) {
	switch {
	case isErr && p.r.StatusCode == "EXECABORT":
		c.endTx(p, false) // refused at queueing: nothing ran
	case isErr:
		c.ambiguous() // whether the transaction is still open is not said
		return
	case s.top == '*' && s.n == -1, s.top == '_':
		c.endTx(p, false) // a WATCHed key changed: nothing ran
	case s.top == '*' && exec && c.execComplete():
		c.endTx(p, true)
	default:
		c.ambiguous() // not one result per queued command
		return
	}
	c.answered(p)
}

// endTx ends a transaction at the command end (EXEC, DISCARD or RESET):
// the commands held are reported, with the database each ran in when ran
// is set.
func (c *Conn) endTx(end *pending, ran bool) {
	c.inTx = false
	i := c.qHead
	for i < len(c.q) && &c.q[i] != end {
		i++
	}
	first := i
	for first > c.qHead && c.q[first-1].held {
		first--
	}
	for j := first; j < i; j++ {
		h := &c.q[j]
		h.held = false
		if !ran || !h.queued {
			continue
		}
		h.r.Namespace = c.namespace()
		if h.cmd.kind == kSelect && h.execOK {
			if h.arg >= 0 {
				c.setDB(h.arg)
			} else {
				c.dbKnown = false
			}
		}
	}
}

// resetDone applies RESET: the connection is as new.
func (c *Conn) resetDone() {
	c.proto = 2
	c.setDB(0)
	c.inTx, c.monitor = false, false
	c.ch, c.pat, c.sh = 0, 0, 0
}

// setError records an error reply: its prefix is the status code when it
// is a known one.
func setError(x *Record, msg []byte) {
	x.Error = true
	x.StatusCode = errorCode(msg)
	x.ErrorType = x.StatusCode
	if x.ErrorType == "" {
		x.ErrorType = OtherError
	}
}

// dbNames are the namespaces of the databases a default server has.
var dbNames = func() [16]string {
	var n [16]string
	for i := range n {
		n[i] = strconv.Itoa(i)
	}
	return n
}()

// setDB records the database the connection uses.
func (c *Conn) setDB(db int64) {
	c.db, c.dbKnown = db, true
	if db < int64(len(dbNames)) {
		c.dbName = dbNames[db]
	} else {
		c.dbName = strconv.FormatInt(db, 10)
	}
}

// namespace is db.namespace: the database index, when known.
func (c *Conn) namespace() string {
	if !c.dbKnown {
		return ""
	}
	return c.dbName
}

// Record is one Redis command and its reply: the record of the protocol.
type Record struct {
	protocols.Exchange
	semconv.DB
}
