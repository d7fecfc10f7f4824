package sqlquery

// Split returns the statements of a text that holds several, as a
// PostgreSQL simple query or a MySQL multi-statement query may: the text
// is cut at each ";" outside literals, comments, dollar quotes and
// parentheses, each statement is trimmed of the blanks and comments
// around it, and empty ones are dropped. The statements share the text's
// bytes.
//
// The body of a routine (CREATE PROCEDURE, FUNCTION, TRIGGER or EVENT)
// may hold semicolons of its own between BEGIN and END: Split does not
// cut there. Where PostgreSQL and MySQL would end a string at different
// places, no ";" in between cuts the text.
func Split(text string) []string {
	return split(text, readBoth)
}

func split(text string, rs readings) []string {
	var out []string
	st := splitState{start: -1}
	l := newLexer(text, rs)
	for {
		t := l.next()
		if t.kind == tEOF {
			break
		}
		semicolon := t.kind == tPunct && text[t.start] == ';'
		if semicolon && st.endPending {
			st.closeBlock() // END;
		}
		if semicolon && st.depth == 0 && st.block == 0 {
			if st.start >= 0 {
				out = append(out, text[st.start:st.end])
			}
			st = splitState{start: -1}
			continue
		}
		st.token(text, t)
	}
	if st.start >= 0 {
		out = append(out, text[st.start:st.end])
	}
	return out
}

// splitState follows one statement of a text being split.
type splitState struct {
	start, end int // the statement's first and last token; start -1 before the first
	depth      int // parentheses
	words      int // words read, to find CREATE ... PROCEDURE near the start
	routine    bool
	block      int  // open BEGIN and CASE blocks in a routine's body
	endPending bool // END read: it closes a block unless IF, LOOP, WHILE or REPEAT follows
}

func (st *splitState) token(text string, t token) {
	if st.start < 0 {
		*st = splitState{start: t.start}
	}
	st.end = t.end
	switch t.kind {
	case tPunct:
		switch text[t.start] {
		case '(':
			st.depth++
		case ')':
			if st.depth > 0 {
				st.depth--
			}
		}
	case tWord:
		st.word(text[t.start:t.end], t.kw)
		return
	}
	if st.endPending {
		st.closeBlock()
	}
}

func (st *splitState) word(w string, kw keyword) {
	st.words++
	if st.endPending {
		// The word after END names what it closes: END IF, END CASE,
		// END label. IF, LOOP, WHILE and REPEAT opened no block.
		st.endPending = false
		if kw != kwIf && !equalUpper(w, "LOOP") && !equalUpper(w, "WHILE") && !equalUpper(w, "REPEAT") {
			st.closeBlock()
		}
		return
	}
	switch {
	case st.words == 1:
		st.routine = false
		if kw != kwCreate {
			st.words = 1 << 20 // not a CREATE: stop looking
		}
	case st.words < 12 && !st.routine:
		st.routine = kw == kwProcedure || kw == kwFunction || kw == kwTrigger || equalUpper(w, "EVENT")
	case st.routine:
		switch kw {
		case kwBegin, kwCase:
			st.block++
		case kwEnd:
			st.endPending = true
		}
	}
}

func (st *splitState) closeBlock() {
	st.endPending = false
	if st.block > 0 {
		st.block--
	}
}
