// Package redis turns the bytes a Redis client moves on one TCP connection
// into database operations: each command paired with its reply, in RESP2
// or RESP3, as the semantic conventions for Redis client spans describe
// them.
//
// # Bytes
//
// The bytes come from the kernel, one Segment per syscall, and are lossy: a
// syscall that moved more than the capture size leaves a gap of known
// length after its captured prefix. The parser counts bytes instead of
// keeping them: a gap inside a bulk string of known length keeps it in
// step; a gap anywhere else loses its place in that direction.
//
// # Pairing
//
// Commands are answered in the order they were sent, so pairing is exact
// only while every command and every reply is accounted for; the parser
// never pairs by a guess:
//
//   - Only a client's connection seen from its start is paired (Reset with
//     RoleClient). One whose role is not known was seen from the middle:
//     replies to commands sent before may still be on their way, and
//     nothing on the wire says how many. Nor is a connection on which the
//     watched process is the server. Both are counted, once.
//   - When the command direction loses its place, the commands seen before
//     are still paired with the next replies; later ones are not reported.
//     When the reply direction loses its place, or a reply comes that no
//     command waits for, pairing stops at once, counted; the commands
//     sent after are still read, while their direction keeps its place,
//     and each is counted as unreported. Close stops pairing too: what is
//     fed after it (events were lost) waits for a Reset.
//   - Out-of-band data answers no command: RESP3 pushes, RESP2 pub/sub
//     messages on a subscribed connection, MONITOR's stream, and RESP3
//     attributes, which precede the reply they annotate. Subscription
//     confirmations (pushes in RESP3, arrays in RESP2) answer SUBSCRIBE
//     and its kin, one per channel or pattern; the record's response runs
//     from the first to the last. HELLO 3 switches the connection to RESP3.
//   - Replies suppressed with CLIENT REPLY OFF or SKIP are followed as the
//     server suppresses them; those commands are counted, not reported.
//     Where it cannot be exact (CLIENT REPLY inside MULTI or on a
//     subscribed connection, an error that may be CLIENT REPLY's own or a
//     later command's), pairing stops, counted.
//   - Blocking commands (BLPOP and the like) are commands whose reply comes
//     late; one that never comes is reported at Close without a response.
//
// # Transactions
//
// MULTI, each command and EXEC (or DISCARD) are records of their own, in
// that order, each with its own request and response times: a queued
// command's response is its +QUEUED. Its status is the one it ended with:
// refused while queueing (an unknown command), or its result in EXEC's
// array (WRONGTYPE at run time). A transaction that EXEC aborts (EXECABORT,
// or a null reply after WATCH) ran nothing: its commands keep the status of
// their queueing. The records of a transaction are reported when it ends.
// The conventions' batch naming ("MULTI SET") is for a client library's
// single call; on the wire each command is seen apart.
//
// # Attributes
//
// db.operation.name is the command's name, upper case, and for the
// commands that take a subcommand (CLIENT SETNAME, CONFIG GET, ...) both
// words. Names are bounded, since every distinct one makes a metric
// series: a command this package does not know (Redis 7 and 8, and the
// modules Redis 8 ships) is "_OTHER", a known container with an unknown
// subcommand is the container alone ("CLIENT"). Upper-casing departs from
// the conventions' advice to keep the application's case, for the same
// reason: "get" and "GET" are one command. db.query.summary, and so the
// span name, is the same name: the conventions leave the database index
// out of Redis span names.
//
// db.namespace is the database index: "0" from the start of a connection,
// then what a successful SELECT (or RESET) chose; SELECT inside a
// transaction counts when EXEC runs it. When it cannot be known (a SELECT
// whose reply was suppressed) it is left out.
//
// db.query.text, only with Options.QueryText, is the command's name and a
// "?" for each argument ("SET ? ?"), at most 32 of them: keys and values
// alike may be personal data, so no argument is ever written. An unknown
// command has none.
//
// An error reply's first word is db.response.status_code and error.type
// when it is one of the prefixes Redis uses (ERR, WRONGTYPE, NOSCRIPT,
// MOVED, ...); any other error has no status code and error.type "_OTHER".
//
// # Bounds
//
// A Conn holds bounded state whatever the peers send: at most 256
// commands waiting for replies (more are dropped, counted, keeping the
// order, when their replies can be stepped over; else pairing stops),
// aggregates nested at most 32 deep, 32 bytes kept of the few scalars that
// matter (command names, error prefixes, pub/sub kinds), an inline command
// line of at most 64 KiB counted through, not kept, and eight query texts.
// It copies what it keeps and never holds the caller's buffers. A Conn is
// not safe for concurrent use.
package redis // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/redis"
