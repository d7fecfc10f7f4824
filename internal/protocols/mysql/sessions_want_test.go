package mysql

// The records each recorded session must give, in order: what the wire
// said, the statement texts with their literals replaced.
var sessionRecords = map[string][]brief{
	"go.session": concat(
		[]brief{
			ok(comQuery, "CREATE", "users", "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(?))", "CREATE TABLE users"),
			ok(comQuery, "INSERT", "users", "INSERT INTO users VALUES (?, ?)", "INSERT users"),
			failed(ok(comStmtPrepare, "PREPARE", "items", "INSERT INTO items (id, label) VALUES (?, ?)", ""), "1146", "42S02"),
			ok(comQuery, "CREATE", "items", "CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(?))", "CREATE TABLE items"),
			ok(comStmtPrepare, "PREPARE", "items", "INSERT INTO items (id, label) VALUES (?, ?)", ""),
		},
		repeat(100, ok(comStmtExecute, "INSERT", "items", "INSERT INTO items (id, label) VALUES (?, ?)", "INSERT items")),
		[]brief{
			ok(comQuery, "SELECT", "seq_1_to_10000", "SELECT seq, CONCAT(?, seq) FROM seq_1_to_10000", "SELECT seq_1_to_10000"),
			failed(ok(comQuery, "SELECT", "no_such_table", "SELECT * FROM no_such_table", "SELECT no_such_table"), "1146", "42S02"),
			failed(ok(comQuery, "INSERT", "users", "INSERT INTO users VALUES (?, ?)", "INSERT users"), "1062", "23000"),
			ok(comStmtPrepare, "PREPARE", "users", "SELECT name FROM users WHERE id = ?", ""),
			ok(comStmtExecute, "SELECT", "users", "SELECT name FROM users WHERE id = ?", "SELECT users"),
		},
	),
	"pymysql.session": {
		ok(comQuery, "SET", "", "SET AUTOCOMMIT = ?", "SET"),
		ok(comQuery, "SELECT", "users", "SELECT id, name FROM users WHERE name = ?", "SELECT users"),
		ok(comQuery, "UPDATE", "users", "UPDATE users SET name = ? WHERE id = ?", "UPDATE users"),
		// Two statements in one text: no one operation or summary.
		ok(comQuery, "", "", "SELECT ?; SELECT ?, ?", ""),
		ok(comQuery, "CREATE", "", "CREATE PROCEDURE count_items() BEGIN SELECT COUNT(*) FROM items; SELECT ?; END", "CREATE PROCEDURE count_items"),
		ok(comQuery, "CALL", "", "CALL count_items()", "CALL count_items"),
		ok(comQuery, "LOAD", "", "LOAD DATA LOCAL INFILE ? INTO TABLE items", ""),
		failed(ok(comQuery, "SELECT", "users", "SELECT nope FROM users", "SELECT users"), "1054", "42S22"),
		inDB("mysql", ok(comQuery, "SELECT", "user", "SELECT COUNT(*) FROM user", "SELECT user")),
		ok(comQuery, "COMMIT", "", "COMMIT", "COMMIT"),
	},
	"cli.session": {
		// No database at login: the client selects one after this query.
		inDB("", ok(comQuery, "SELECT", "", "SELECT DATABASE()", "SELECT")),
		ok(comQuery, "SELECT", "items", "SELECT COUNT(*) FROM items WHERE id < ?", "SELECT items"),
		failed(ok(comQuery, "SELECT", "missing_table", "SELECT * FROM missing_table", "SELECT missing_table"), "1146", "42S02"),
		ok(comQuery, "DELETE", "items", "DELETE FROM items WHERE id >= ?", "DELETE items"),
		ok(comQuery, "SHOW", "", "SHOW TABLES", ""),
	},
}

// ok is a successful operation on MariaDB in the database otel.
func ok(cmd byte, op, coll, text, summary string) brief {
	return brief{Sys: MariaDB, Cmd: cmd, Op: op, Coll: coll, NS: "otel", Text: text, Summary: summary}
}

// failed makes b an operation that failed with the error code and
// SQLSTATE.
func failed(b brief, code, state string) brief {
	b.Code, b.Err, b.State = code, true, state
	return b
}

// inDB sets the database of b.
func inDB(ns string, b brief) brief {
	b.NS = ns
	return b
}
