package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
)

func init() {
	peerRoles["parents-go-front"] = runParentsGoFront
	peerRoles["parents-grpc-backend"] = runParentsGRPCBackend
}

// The calls a Go front makes for request id, one per request, each
// carrying something of id that its client span shows, so that the test
// can tell which request the call was made for.
const (
	frontHTTP  = "http"  // GET /work/{id} on the backend (url.full)
	frontMySQL = "mysql" // SELECT 1 AS c{id} (db.query.text "SELECT ? AS c{id}")
	frontRedis = "redis" // redisCall(id) (db.query.text: its command and argument count)
	frontGRPC  = "grpc"  // a unary call of method parents.Echo/Call{id} (rpc.method)
)

// redisCommands are the commands a Redis call is made of; redisCall(id)
// picks one and a number of keys (1 to 32), which db.query.text shows as
// "?"s: 160 signatures, the most a Redis span can tell apart without
// showing an argument.
var redisCommands = []string{"EXISTS", "MGET", "TOUCH", "UNLINK", "DEL"}

const redisSignatures = 5 * 32

// redisCall is the command and the number of keys of request id's call.
func redisCall(id int) (string, int) {
	s := id % redisSignatures
	return redisCommands[s%len(redisCommands)], s/len(redisCommands) + 1
}

// redisText is the db.query.text of request id's call.
func redisText(id int) string {
	cmd, keys := redisCall(id)
	return cmd + strings.Repeat(" ?", keys)
}

// runParentsGoFront serves GET /call/{id}: it makes the call E2E_MODE says
// for request id to E2E_BACKEND, while serving, and answers 200 when the
// call worked.
func runParentsGoFront() {
	backend := os.Getenv("E2E_BACKEND")
	call, err := frontCaller(os.Getenv("E2E_MODE"), backend)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/call/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err == nil {
			err = call(r.Context(), id)
		}
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintln(w, err)
			return
		}
		w.Write([]byte("ok"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	http.Serve(ln, mux)
}

// frontCaller returns what the front calls for a request, in mode.
func frontCaller(mode, backend string) (func(ctx context.Context, id int) error, error) {
	switch mode {
	case frontHTTP:
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		return func(ctx context.Context, id int) error {
			resp, err := client.Get("http://" + backend + "/work/" + strconv.Itoa(id))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			return resp.Body.Close()
		}, nil
	case frontMySQL:
		db, err := sql.Open("mysql", backend)
		if err != nil {
			return nil, err
		}
		db.SetMaxIdleConns(64)
		return func(ctx context.Context, id int) error {
			var one int
			return db.QueryRowContext(ctx, "SELECT 1 AS c"+strconv.Itoa(id)).Scan(&one)
		}, nil
	case frontRedis:
		rdb := redis.NewClient(&redis.Options{Addr: backend, PoolSize: 64, MinIdleConns: 0})
		return func(ctx context.Context, id int) error {
			cmd, keys := redisCall(id)
			args := []any{cmd}
			for k := 0; k < keys; k++ {
				args = append(args, fmt.Sprintf("parents:%d:%d", id, k))
			}
			return rdb.Do(ctx, args...).Err()
		}, nil
	case frontGRPC:
		conn, err := grpc.NewClient(backend, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(parentsCodec{})))
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, id int) error {
			in, out := []byte("hi"), []byte(nil)
			return conn.Invoke(ctx, "/parents.Echo/Call"+strconv.Itoa(id), &in, &out)
		}, nil
	}
	return nil, fmt.Errorf("E2E_MODE %q is none of http, mysql, redis, grpc", mode)
}

// parentsCodec sends and receives bytes as they are: the calls of the gRPC
// front need no protobuf messages.
type parentsCodec struct{}

func (parentsCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (parentsCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (parentsCodec) Name() string { return "proto" } // what grpc-go servers expect

// runParentsGRPCBackend answers every unary call of any method with what
// it was sent.
func runParentsGRPCBackend() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	s := grpc.NewServer(grpc.ForceServerCodecV2(parentsCodec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // a call takes a while, as real ones do
		return stream.SendMsg(&in)
	}))
	fmt.Println("READY", ln.Addr().String())
	s.Serve(ln)
}
