package sqlquery

// keyword is a word the package knows; 0 is none.
type keyword uint8

const (
	kwNone keyword = iota
	// Statements.
	kwAbort
	kwAlter
	kwAnalyze
	kwBegin
	kwCall
	kwCheckpoint
	kwClose
	kwCluster
	kwComment
	kwCommit
	kwCopy
	kwCreate
	kwDeallocate
	kwDeclare
	kwDelete
	kwDesc
	kwDescribe
	kwDiscard
	kwDo
	kwDrop
	kwEnd
	kwExecute
	kwExplain
	kwFetch
	kwFlush
	kwGrant
	kwHandler
	kwInsert
	kwKill
	kwListen
	kwLoad
	kwLock
	kwMerge
	kwMove
	kwNotify
	kwOptimize
	kwPrepare
	kwReindex
	kwRefresh
	kwRelease
	kwRename
	kwReplace
	kwReset
	kwRevoke
	kwRollback
	kwSavepoint
	kwSelect
	kwSet
	kwShow
	kwStart
	kwTruncate
	kwUnlisten
	kwUnlock
	kwUpdate
	kwUse
	kwVacuum
	kwValues
	kwWith
	// Clauses and joins.
	kwAll
	kwAnd
	kwAs
	kwBetween
	kwBy
	kwCase
	kwConflict
	kwCross
	kwDefault
	kwDistinct
	kwDiv
	kwDuplicate
	kwElse
	kwEscape
	kwExcept
	kwExists
	kwFalse
	kwFor
	kwForce
	kwFrom
	kwFull
	kwGroup
	kwHaving
	kwIf
	kwIgnore
	kwIlike
	kwIn
	kwInclude
	kwInner
	kwIntersect
	kwInterval
	kwInto
	kwIs
	kwJoin
	kwKey
	kwLateral
	kwLeft
	kwLike
	kwLimit
	kwMatched
	kwMinus
	kwMod
	kwNatural
	kwNot
	kwNull
	kwOffset
	kwOn
	kwOnly
	kwOr
	kwOrder
	kwOuter
	kwOverriding
	kwPartition
	kwProcedure
	kwRecursive
	kwReferences
	kwRegexp
	kwReturn
	kwReturning
	kwRight
	kwRlike
	kwSimilar
	kwStraightJoin
	kwTablesample
	kwThen
	kwTo
	kwTrue
	kwUnion
	kwUnique
	kwUsing
	kwValue
	kwWhen
	kwWhere
	kwWindow
	kwXor
	// Objects and modifiers.
	kwColumn
	kwConcurrently
	kwConstraint
	kwDatabase
	kwDelayed
	kwExtension
	kwFunction
	kwGlobal
	kwHighPriority
	kwIndex
	kwLocal
	kwLowPriority
	kwMaterialized
	kwQuick
	kwSchema
	kwSequence
	kwTable
	kwTemp
	kwTemporary
	kwTransaction
	kwTrigger
	kwType
	kwUnlogged
	kwView
	kwWork
	kwCount // the number of keywords
)

// Keyword flags.
const (
	// fStatement: the keyword may start a statement (db.operation.name).
	fStatement = 1 << iota
	// fOperand: an operand follows it, so a sign after it is unary.
	fOperand
	// fNameNext: a quoted name right after it is an identifier: FROM "t".
	fNameNext
	// fNameList: it opens a clause of names separated by commas, and a
	// quoted name after such a comma is an identifier: FROM "a", "b".
	fNameList
	// fClauseEnd: it ends such a clause.
	fClauseEnd
	// fNameParen: a parenthesis right after it holds names: KEY ("id").
	fNameParen
	// fNameThenParen: a parenthesis after the name that follows it holds
	// names: INTO "t" ("a", "b").
	fNameThenParen
	// fNotAlias: it cannot be a table alias, so it ends a table reference.
	fNotAlias
	// fJoin: it starts a join: JOIN, LEFT JOIN, NATURAL JOIN.
	fJoin
	// fClause: it starts a clause after a table list, ending a join
	// condition: WHERE, GROUP, ORDER, SET.
	fClause
)

var keywordInfo = [kwCount]struct {
	name  string
	flags uint16
}{
	kwAbort:        {"ABORT", fStatement},
	kwAlter:        {"ALTER", fStatement},
	kwAnalyze:      {"ANALYZE", fStatement},
	kwBegin:        {"BEGIN", fStatement},
	kwCall:         {"CALL", fStatement | fNameNext},
	kwCheckpoint:   {"CHECKPOINT", fStatement},
	kwClose:        {"CLOSE", fStatement},
	kwCluster:      {"CLUSTER", fStatement},
	kwComment:      {"COMMENT", fStatement},
	kwCommit:       {"COMMIT", fStatement},
	kwCopy:         {"COPY", fStatement | fNameNext | fNameThenParen},
	kwCreate:       {"CREATE", fStatement},
	kwDeallocate:   {"DEALLOCATE", fStatement},
	kwDeclare:      {"DECLARE", fStatement},
	kwDelete:       {"DELETE", fStatement},
	kwDesc:         {"DESC", fStatement | fNotAlias},
	kwDescribe:     {"DESCRIBE", fStatement},
	kwDiscard:      {"DISCARD", fStatement},
	kwDo:           {"DO", fStatement | fClauseEnd},
	kwDrop:         {"DROP", fStatement},
	kwEnd:          {"END", fStatement},
	kwExecute:      {"EXECUTE", fStatement},
	kwExplain:      {"EXPLAIN", fStatement},
	kwFetch:        {"FETCH", fStatement | fNotAlias | fClause},
	kwFlush:        {"FLUSH", fStatement},
	kwGrant:        {"GRANT", fStatement},
	kwHandler:      {"HANDLER", fStatement},
	kwInsert:       {"INSERT", fStatement},
	kwKill:         {"KILL", fStatement},
	kwListen:       {"LISTEN", fStatement},
	kwLoad:         {"LOAD", fStatement},
	kwLock:         {"LOCK", fStatement | fNotAlias | fClause},
	kwMerge:        {"MERGE", fStatement},
	kwMove:         {"MOVE", fStatement},
	kwNotify:       {"NOTIFY", fStatement},
	kwOptimize:     {"OPTIMIZE", fStatement},
	kwPrepare:      {"PREPARE", fStatement},
	kwReindex:      {"REINDEX", fStatement},
	kwRefresh:      {"REFRESH", fStatement},
	kwRelease:      {"RELEASE", fStatement},
	kwRename:       {"RENAME", fStatement},
	kwReplace:      {"REPLACE", fStatement},
	kwReset:        {"RESET", fStatement},
	kwRevoke:       {"REVOKE", fStatement},
	kwRollback:     {"ROLLBACK", fStatement},
	kwSavepoint:    {"SAVEPOINT", fStatement},
	kwSelect:       {"SELECT", fStatement | fOperand | fClauseEnd | fNotAlias},
	kwSet:          {"SET", fStatement | fNameNext | fNameList | fNotAlias | fClause},
	kwShow:         {"SHOW", fStatement},
	kwStart:        {"START", fStatement},
	kwTruncate:     {"TRUNCATE", fStatement | fNameNext},
	kwUnlisten:     {"UNLISTEN", fStatement},
	kwUnlock:       {"UNLOCK", fStatement},
	kwUpdate:       {"UPDATE", fStatement | fNameNext | fNameList},
	kwUse:          {"USE", fStatement | fNotAlias},
	kwVacuum:       {"VACUUM", fStatement},
	kwValues:       {"VALUES", fStatement | fClauseEnd | fNotAlias},
	kwWith:         {"WITH", fStatement | fNotAlias},
	kwAll:          {"ALL", 0},
	kwAnd:          {"AND", fOperand},
	kwAs:           {"AS", fNameNext | fNotAlias},
	kwBetween:      {"BETWEEN", fOperand},
	kwBy:           {"BY", 0},
	kwCase:         {"CASE", fOperand},
	kwConflict:     {"CONFLICT", fNameParen},
	kwCross:        {"CROSS", fNotAlias | fJoin},
	kwDefault:      {"DEFAULT", fOperand | fNotAlias},
	kwDistinct:     {"DISTINCT", 0},
	kwDiv:          {"DIV", fOperand},
	kwDuplicate:    {"DUPLICATE", 0},
	kwElse:         {"ELSE", fOperand},
	kwEscape:       {"ESCAPE", fOperand},
	kwExcept:       {"EXCEPT", fClauseEnd | fNotAlias | fClause},
	kwExists:       {"EXISTS", fNameNext},
	kwFalse:        {"FALSE", 0},
	kwFor:          {"FOR", fClauseEnd | fNotAlias | fClause},
	kwForce:        {"FORCE", fNotAlias},
	kwFrom:         {"FROM", fNameNext | fNameList | fNotAlias},
	kwFull:         {"FULL", fNotAlias | fJoin},
	kwGroup:        {"GROUP", fClauseEnd | fNotAlias | fClause},
	kwHaving:       {"HAVING", fOperand | fClauseEnd | fNotAlias | fClause},
	kwIf:           {"IF", 0},
	kwIgnore:       {"IGNORE", fNotAlias},
	kwIlike:        {"ILIKE", fOperand},
	kwIn:           {"IN", fOperand},
	kwInclude:      {"INCLUDE", fNameParen},
	kwInner:        {"INNER", fNotAlias | fJoin},
	kwIntersect:    {"INTERSECT", fClauseEnd | fNotAlias | fClause},
	kwInterval:     {"INTERVAL", fOperand},
	kwInto:         {"INTO", fNameNext | fNameThenParen | fClauseEnd | fNotAlias | fClause},
	kwIs:           {"IS", fOperand},
	kwJoin:         {"JOIN", fNameNext | fNameList | fNotAlias | fJoin},
	kwKey:          {"KEY", fNameParen},
	kwLateral:      {"LATERAL", fNotAlias},
	kwLeft:         {"LEFT", fNotAlias | fJoin},
	kwLike:         {"LIKE", fOperand},
	kwLimit:        {"LIMIT", fOperand | fClauseEnd | fNotAlias | fClause},
	kwMatched:      {"MATCHED", 0},
	kwMinus:        {"MINUS", fClauseEnd | fNotAlias | fClause},
	kwMod:          {"MOD", fOperand},
	kwNatural:      {"NATURAL", fNotAlias | fJoin},
	kwNot:          {"NOT", fOperand},
	kwNull:         {"NULL", 0},
	kwOffset:       {"OFFSET", fOperand | fClauseEnd | fNotAlias | fClause},
	kwOn:           {"ON", fClauseEnd | fNotAlias},
	kwOnly:         {"ONLY", fNameNext},
	kwOr:           {"OR", fOperand},
	kwOrder:        {"ORDER", fClauseEnd | fNotAlias | fClause},
	kwOuter:        {"OUTER", fNotAlias},
	kwOverriding:   {"OVERRIDING", fNotAlias},
	kwPartition:    {"PARTITION", fNotAlias},
	kwProcedure:    {"PROCEDURE", fNameNext | fNotAlias},
	kwRecursive:    {"RECURSIVE", 0},
	kwReferences:   {"REFERENCES", fNameNext | fNameThenParen},
	kwRegexp:       {"REGEXP", fOperand},
	kwReturn:       {"RETURN", fOperand},
	kwReturning:    {"RETURNING", fOperand | fNameNext | fNameList | fNotAlias | fClause},
	kwRight:        {"RIGHT", fNotAlias | fJoin},
	kwRlike:        {"RLIKE", fOperand},
	kwSimilar:      {"SIMILAR", fOperand},
	kwStraightJoin: {"STRAIGHT_JOIN", fNameNext | fNameList | fNotAlias | fJoin},
	kwTablesample:  {"TABLESAMPLE", fNotAlias},
	kwThen:         {"THEN", fOperand},
	kwTo:           {"TO", fNotAlias},
	kwTrue:         {"TRUE", 0},
	kwUnion:        {"UNION", fClauseEnd | fNotAlias | fClause},
	kwUnique:       {"UNIQUE", fNameParen},
	kwUsing:        {"USING", fNameList | fNameParen | fNotAlias},
	kwValue:        {"VALUE", fClauseEnd | fNotAlias},
	kwWhen:         {"WHEN", fOperand | fNotAlias},
	kwWhere:        {"WHERE", fOperand | fClauseEnd | fNotAlias | fClause},
	kwWindow:       {"WINDOW", fClauseEnd | fNotAlias | fClause},
	kwXor:          {"XOR", fOperand},
	kwColumn:       {"COLUMN", fNameNext},
	kwConcurrently: {"CONCURRENTLY", 0},
	kwConstraint:   {"CONSTRAINT", fNameNext},
	kwDatabase:     {"DATABASE", fNameNext},
	kwDelayed:      {"DELAYED", 0},
	kwExtension:    {"EXTENSION", fNameNext},
	kwFunction:     {"FUNCTION", fNameNext},
	kwGlobal:       {"GLOBAL", 0},
	kwHighPriority: {"HIGH_PRIORITY", 0},
	kwIndex:        {"INDEX", fNameNext},
	kwLocal:        {"LOCAL", 0},
	kwLowPriority:  {"LOW_PRIORITY", 0},
	kwMaterialized: {"MATERIALIZED", 0},
	kwQuick:        {"QUICK", 0},
	kwSchema:       {"SCHEMA", fNameNext},
	kwSequence:     {"SEQUENCE", fNameNext},
	kwTable:        {"TABLE", fNameNext | fNameThenParen},
	kwTemp:         {"TEMP", 0},
	kwTemporary:    {"TEMPORARY", 0},
	kwTransaction:  {"TRANSACTION", 0},
	kwTrigger:      {"TRIGGER", fNameNext},
	kwType:         {"TYPE", fNameNext},
	kwUnlogged:     {"UNLOGGED", 0},
	kwView:         {"VIEW", fNameNext},
	kwWork:         {"WORK", 0},
}

// kwFlags is keywordInfo's flags, indexed for the hot path.
var kwFlags = func() (f [kwCount]uint16) {
	for k, info := range keywordInfo {
		f[k] = info.flags
	}
	return f
}()

// The keyword table is open-addressed on a hash of the upper-cased word:
// looking a word up neither allocates nor builds an upper-case copy.
const (
	kwTableBits = 9
	kwTableSize = 1 << kwTableBits
	maxKeyword  = 13 // the longest keyword: LOW_PRIORITY, HIGH_PRIORITY, STRAIGHT_JOIN
)

var kwHashTable = func() (t [kwTableSize]keyword) {
	for k := keyword(1); k < kwCount; k++ {
		name := keywordInfo[k].name
		if name == "" || len(name) > maxKeyword {
			panic("sqlquery: bad keyword table entry " + name)
		}
		h := kwHash(name)
		for t[h] != kwNone {
			h = (h + 1) & (kwTableSize - 1)
		}
		t[h] = k
	}
	return t
}()

// kwHash hashes w as if it were upper case (FNV-1a, folded).
func kwHash(w string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		h = (h ^ uint32(c)) * 16777619
	}
	return (h ^ h>>16) & (kwTableSize - 1)
}

// lookupKeyword returns the keyword w spells in any case, or kwNone.
func lookupKeyword(w string) keyword {
	if len(w) < 2 || len(w) > maxKeyword {
		return kwNone
	}
	for h := kwHash(w); ; h = (h + 1) & (kwTableSize - 1) {
		k := kwHashTable[h]
		if k == kwNone {
			return kwNone
		}
		if equalUpper(w, keywordInfo[k].name) {
			return k
		}
	}
}

// equalUpper says whether w is upper, an upper-case ASCII word, in any case.
func equalUpper(w, upper string) bool {
	if len(w) != len(upper) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// name is the keyword in upper case.
func (k keyword) name() string { return keywordInfo[k].name }

func (k keyword) is(flag uint16) bool { return kwFlags[k]&flag != 0 }
