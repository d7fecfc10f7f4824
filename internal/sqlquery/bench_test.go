package sqlquery

import "testing"

// Statements an ORM sends: Django's with literals (client-side
// interpolation, as psycopg2 does), Rails' with parameters, a bulk insert.
var benchQueries = []struct{ name, text string }{
	{"django", `SELECT "auth_user"."id", "auth_user"."password", "auth_user"."last_login", "auth_user"."is_superuser", "auth_user"."username", "auth_user"."first_name", "auth_user"."last_name", "auth_user"."email", "auth_user"."is_staff", "auth_user"."is_active", "auth_user"."date_joined" FROM "auth_user" WHERE "auth_user"."username" = 'admin' LIMIT 21`},
	{"rails", `SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`},
	{"hibernate", "select o1_0.id,o1_0.created_at,o1_0.customer_id,o1_0.total from orders o1_0 join customers c1_0 on c1_0.id=o1_0.customer_id where c1_0.email=? and o1_0.total>? order by o1_0.created_at desc offset ? rows fetch first ? rows only"},
	{"bulk", "INSERT INTO `events` (`kind`,`user_id`,`payload`,`created_at`) VALUES ('click',42,'{\"x\":1}','2024-01-01 10:00:00'),('view',43,'{\"x\":2}','2024-01-01 10:00:01'),('click',44,'{\"x\":3}','2024-01-01 10:00:02')"},
}

func BenchmarkSanitize(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(q.text)))
			for b.Loop() {
				Sanitize(q.text)
			}
		})
	}
}

func BenchmarkAnalyze(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(q.text)))
			for b.Loop() {
				Analyze(q.text)
			}
		})
	}
}

func BenchmarkSplit(b *testing.B) {
	text := "BEGIN; " + benchQueries[0].text + "; " + benchQueries[1].text + "; COMMIT"
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		Split(text)
	}
}
