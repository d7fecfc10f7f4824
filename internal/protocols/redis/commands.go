package redis

import "strings"

// kind is what a command does to the connection, beyond its own reply.
type kind uint8

const (
	kPlain        kind = iota // one reply, no effect on how later replies read
	kSelect                   // SELECT: changes the database index
	kHello                    // HELLO: may switch the protocol version
	kMulti                    // MULTI: starts a transaction
	kExec                     // EXEC: runs it
	kDiscard                  // DISCARD: drops it
	kReset                    // RESET: back to the state of a new connection
	kMonitor                  // MONITOR: the server streams every command it runs
	kSync                     // SYNC, PSYNC: the connection becomes a replication stream
	kClientReply              // CLIENT REPLY: may suppress replies
	kSubscribe                // SUBSCRIBE: one confirmation per channel
	kPSubscribe               // PSUBSCRIBE
	kSSubscribe               // SSUBSCRIBE
	kUnsubscribe              // UNSUBSCRIBE
	kPUnsubscribe             // PUNSUBSCRIBE
	kSUnsubscribe             // SUNSUBSCRIBE
)

// pubsub says whether k is one of the six commands answered by one
// confirmation per channel or pattern.
func (k kind) pubsub() bool { return k >= kSubscribe }

// command is what is known of a command by its name.
type command struct {
	name      string // canonical: upper case, "CLIENT SETNAME" for a subcommand
	kind      kind
	container bool // the name needs its subcommand ("CLIENT", "CONFIG", ...)
	words     int  // words of the name: 1, or 2 with a subcommand
}

// otherCommand stands for every name that is not a known command: a peer
// may send anything, and every distinct name would make a metric series.
var otherCommand = &command{name: "_OTHER", words: 1}

// Command names, from the command tables of Redis 7.0 (COMMAND LIST), the
// commands added up to Redis 8 (hash field expiry, vector sets) and the
// commands of the modules Redis 8 ships (JSON, search, time series,
// probabilistic structures).
const plainCommands = `
APPEND ASKING AUTH BGREWRITEAOF BGSAVE BITCOUNT BITFIELD BITFIELD_RO BITOP BITPOS BLMOVE
BLMPOP BLPOP BRPOP BRPOPLPUSH BZMPOP BZPOPMAX BZPOPMIN COPY DBSIZE
DECR DECRBY DEL DUMP ECHO EVAL EVAL_RO EVALSHA EVALSHA_RO EXISTS EXPIRE
EXPIREAT EXPIRETIME FAILOVER FCALL FCALL_RO FLUSHALL FLUSHDB GEOADD GEODIST GEOHASH
GEOPOS GEORADIUS GEORADIUS_RO GEORADIUSBYMEMBER GEORADIUSBYMEMBER_RO GEOSEARCH GEOSEARCHSTORE
GET GETBIT GETDEL GETEX GETRANGE GETSET HDEL HEXISTS HGET HGETALL HINCRBY HINCRBYFLOAT
HKEYS HLEN HMGET HMSET HRANDFIELD HSCAN HSET HSETNX HSTRLEN HVALS INCR INCRBY INCRBYFLOAT INFO
DEBUG KEYS LASTSAVE LCS LINDEX LINSERT LLEN LMOVE LMPOP LOLWUT LPOP LPOS LPUSH LPUSHX LRANGE
LREM LSET LTRIM MGET MIGRATE MOVE MSET MSETNX PERSIST PEXPIRE
PEXPIREAT PEXPIRETIME PFADD PFCOUNT PFDEBUG PFMERGE PFSELFTEST PING PSETEX PTTL
PUBLISH QUIT RANDOMKEY READONLY READWRITE RENAME RENAMENX REPLCONF REPLICAOF
RESTORE RESTORE-ASKING ROLE RPOP RPOPLPUSH RPUSH RPUSHX SADD SAVE SCAN SCARD
SDIFF SDIFFSTORE SET SETBIT SETEX SETNX SETRANGE SHUTDOWN SINTER SINTERCARD SINTERSTORE
SISMEMBER SLAVEOF SMEMBERS SMISMEMBER SMOVE SORT SORT_RO SPOP SPUBLISH SRANDMEMBER SREM
SSCAN STRLEN SUBSTR SUNION SUNIONSTORE SWAPDB TIME TOUCH
TTL TYPE UNLINK UNWATCH WAIT WAITAOF WATCH XACK XADD XAUTOCLAIM XCLAIM XDEL XLEN XPENDING XRANGE XREAD XREADGROUP
XREVRANGE XSETID XTRIM ZADD ZCARD ZCOUNT ZDIFF ZDIFFSTORE
ZINCRBY ZINTER ZINTERCARD ZINTERSTORE ZLEXCOUNT ZMPOP ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE
ZRANGEBYLEX ZRANGEBYSCORE ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE
ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNION ZUNIONSTORE
HEXPIRE HPEXPIRE HEXPIREAT HPEXPIREAT HTTL HPTTL HEXPIRETIME HPEXPIRETIME HPERSIST
HGETDEL HGETEX HSETEX XACKDEL XDELEX
VADD VCARD VDIM VEMB VGETATTR VINFO VLINKS VRANDMEMBER VREM VSETATTR VSIM
JSON.ARRAPPEND JSON.ARRINDEX JSON.ARRINSERT JSON.ARRLEN JSON.ARRPOP JSON.ARRTRIM JSON.CLEAR
JSON.DEBUG JSON.DEL JSON.FORGET JSON.GET JSON.MERGE JSON.MGET JSON.MSET JSON.NUMINCRBY
JSON.NUMMULTBY JSON.OBJKEYS JSON.OBJLEN JSON.RESP JSON.SET JSON.STRAPPEND JSON.STRLEN
JSON.TOGGLE JSON.TYPE
FT.AGGREGATE FT.ALIASADD FT.ALIASDEL FT.ALIASUPDATE FT.ALTER FT.CONFIG FT.CREATE FT.CURSOR
FT.DICTADD FT.DICTDEL FT.DICTDUMP FT.DROPINDEX FT.EXPLAIN FT.EXPLAINCLI FT.INFO FT.PROFILE
FT.SEARCH FT.SPELLCHECK FT.SUGADD FT.SUGDEL FT.SUGGET FT.SUGLEN FT.SYNDUMP FT.SYNUPDATE
FT.TAGVALS FT._LIST
TS.ADD TS.ALTER TS.CREATE TS.CREATERULE TS.DECRBY TS.DEL TS.DELETERULE TS.GET TS.INCRBY
TS.INFO TS.MADD TS.MGET TS.MRANGE TS.MREVRANGE TS.QUERYINDEX TS.RANGE TS.REVRANGE
BF.ADD BF.CARD BF.EXISTS BF.INFO BF.INSERT BF.LOADCHUNK BF.MADD BF.MEXISTS BF.RESERVE BF.SCANDUMP
CF.ADD CF.ADDNX CF.COUNT CF.DEL CF.EXISTS CF.INFO CF.INSERT CF.INSERTNX CF.LOADCHUNK
CF.MEXISTS CF.RESERVE CF.SCANDUMP
CMS.INCRBY CMS.INFO CMS.INITBYDIM CMS.INITBYPROB CMS.MERGE CMS.QUERY
TOPK.ADD TOPK.COUNT TOPK.INCRBY TOPK.INFO TOPK.LIST TOPK.QUERY TOPK.RESERVE
TDIGEST.ADD TDIGEST.BYRANK TDIGEST.BYREVRANK TDIGEST.CDF TDIGEST.CREATE TDIGEST.INFO
TDIGEST.MAX TDIGEST.MERGE TDIGEST.MIN TDIGEST.QUANTILE TDIGEST.RANK TDIGEST.RESET
TDIGEST.REVRANK TDIGEST.TRIMMED_MEAN
`

// Commands that change how the connection's later replies read.
var specialCommands = map[string]kind{
	"SELECT": kSelect, "HELLO": kHello, "MULTI": kMulti, "EXEC": kExec, "DISCARD": kDiscard,
	"RESET": kReset, "MONITOR": kMonitor, "SYNC": kSync, "PSYNC": kSync,
	"SUBSCRIBE": kSubscribe, "PSUBSCRIBE": kPSubscribe, "SSUBSCRIBE": kSSubscribe,
	"UNSUBSCRIBE": kUnsubscribe, "PUNSUBSCRIBE": kPUnsubscribe, "SUNSUBSCRIBE": kSUnsubscribe,
}

// Commands whose name is two words: the container and its subcommand.
var containerCommands = map[string]string{
	"ACL":      "CAT DELUSER DRYRUN GENPASS GETUSER HELP LIST LOAD LOG SAVE SETUSER USERS WHOAMI",
	"CLIENT":   "CACHING GETNAME GETREDIR HELP ID INFO KILL LIST NO-EVICT NO-TOUCH PAUSE REPLY SETINFO SETNAME TRACKING TRACKINGINFO UNBLOCK UNPAUSE",
	"CLUSTER":  "ADDSLOTS ADDSLOTSRANGE BUMPEPOCH COUNT-FAILURE-REPORTS COUNTKEYSINSLOT DELSLOTS DELSLOTSRANGE FAILOVER FLUSHSLOTS FORGET GETKEYSINSLOT HELP INFO KEYSLOT LINKS MEET MYID MYSHARDID NODES REPLICAS REPLICATE RESET SAVECONFIG SET-CONFIG-EPOCH SETSLOT SHARDS SLAVES SLOTS",
	"COMMAND":  "COUNT DOCS GETKEYS GETKEYSANDFLAGS HELP INFO LIST",
	"CONFIG":   "GET HELP RESETSTAT REWRITE SET",
	"FUNCTION": "DELETE DUMP FLUSH HELP KILL LIST LOAD RESTORE STATS",
	"LATENCY":  "DOCTOR GRAPH HELP HISTOGRAM HISTORY LATEST RESET",
	"MEMORY":   "DOCTOR HELP MALLOC-STATS PURGE STATS USAGE",
	"MODULE":   "HELP LIST LOAD LOADEX UNLOAD",
	"OBJECT":   "ENCODING FREQ HELP IDLETIME REFCOUNT",
	"PUBSUB":   "CHANNELS HELP NUMPAT NUMSUB SHARDCHANNELS SHARDNUMSUB",
	"SCRIPT":   "DEBUG EXISTS FLUSH HELP KILL LOAD",
	"SLOWLOG":  "GET HELP LEN RESET",
	"XGROUP":   "CREATE CREATECONSUMER DELCONSUMER DESTROY HELP SETID",
	"XINFO":    "CONSUMERS GROUPS HELP STREAM",
}

// commands maps every known name, upper case, to what it is; a
// subcommand is under "CONTAINER SUB".
var commands = func() map[string]*command {
	m := make(map[string]*command, 512)
	for _, n := range strings.Fields(plainCommands) {
		m[n] = &command{name: n, words: 1}
	}
	for n, k := range specialCommands {
		m[n] = &command{name: n, kind: k, words: 1}
	}
	for c, subs := range containerCommands {
		m[c] = &command{name: c, container: true, words: 1}
		for _, s := range strings.Fields(subs) {
			n := c + " " + s
			m[n] = &command{name: n, words: 2}
		}
	}
	m["CLIENT REPLY"].kind = kClientReply
	return m
}()

// maxName is the longest command or subcommand name looked up; longer
// ones are not known commands.
const maxName = 24

// lookup finds the command named by its first word and, for a container,
// its second. It does not allocate.
func lookup(name, sub []byte) *command {
	var buf [2*maxName + 1]byte
	n, ok := upper(buf[:maxName], name)
	if !ok {
		return otherCommand
	}
	c := commands[string(buf[:n])]
	if c == nil {
		return otherCommand
	}
	if !c.container {
		return c
	}
	buf[n] = ' '
	m, ok := upper(buf[n+1:], sub)
	if !ok {
		return c // the container alone: its subcommand is not one we know
	}
	if s := commands[string(buf[:n+1+m])]; s != nil {
		return s
	}
	return c
}

// upper copies b, upper-cased, into dst; false if b is empty, too long, or
// not a plain name.
func upper(dst, b []byte) (int, bool) {
	if len(b) == 0 || len(b) > len(dst) {
		return 0, false
	}
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z':
			ch -= 'a' - 'A'
		case ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_', ch == '.':
		default:
			return 0, false
		}
		dst[i] = ch
	}
	return len(b), true
}

// errorPrefixes are the error codes Redis and the modules it ships reply
// with: the first word of an error. Other words are not kept as status
// codes, as a peer could send any number of distinct ones.
var errorPrefixes = func() map[string]string {
	m := make(map[string]string)
	for _, p := range strings.Fields(`ERR WRONGTYPE EXECABORT NOSCRIPT NOAUTH WRONGPASS NOPERM
		BUSY BUSYKEY BUSYGROUP NOGROUP LOADING MASTERDOWN MISCONF MOVED ASK TRYAGAIN CLUSTERDOWN
		CROSSSLOT READONLY NOREPLICAS NOTBUSY UNKILLABLE NOPROTO OOM UNBLOCKED NOQUORUM
		NOGOODSLAVE NOMASTERLINK IOERR INVALIDOBJ INPROG DENIED IDLE NOTREADY`) {
		m[p] = p
	}
	return m
}()

// OtherError is the status code of an error reply whose prefix is not a
// known one, or that has none.
const OtherError = "_OTHER"

// errorCode returns the known prefix of an error message (the bytes
// after '-', or a bulk error's payload), or "".
func errorCode(msg []byte) string {
	end := 0
	for end < len(msg) && msg[end] != ' ' {
		end++
	}
	if end == 0 || end > maxName {
		return ""
	}
	return errorPrefixes[string(msg[:end])]
}
