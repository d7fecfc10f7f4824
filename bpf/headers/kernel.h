/* Minimal kernel types for the tracer, relocated with CO-RE.
 *
 * Only the fields the tracer reads are declared; preserve_access_index makes
 * clang record every access by name, and the loader resolves the real offsets
 * against the running kernel's BTF. Never copy a kernel struct by value: its
 * layout changes between releases (6.18 moved ns_common.inum, for one). */
#ifndef TRACER_KERNEL_H
#define TRACER_KERNEL_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

#define BPF_F_NO_PREALLOC 1
#define BPF_LOCAL_STORAGE_GET_F_CREATE 1

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
};

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define EINPROGRESS 115
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long orig_ax; /* the syscall number, while in a syscall */
} __attribute__((preserve_access_index));
#define SYSCALL_ARG1(r) BPF_CORE_READ((r), di)
#define SYSCALL_ARG2(r) BPF_CORE_READ((r), si)
#define SYSCALL_ARG3(r) BPF_CORE_READ((r), dx)
#define SYSCALL_ARG4(r) BPF_CORE_READ((r), r10)
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	__u64 regs[31];
	__u64 orig_x0;   /* the first argument, while in a syscall */
	__s32 syscallno; /* the syscall number, while in a syscall */
} __attribute__((preserve_access_index));
#define SYSCALL_ARG1(r) BPF_CORE_READ((r), regs[0])
#define SYSCALL_ARG2(r) BPF_CORE_READ((r), regs[1])
#define SYSCALL_ARG3(r) BPF_CORE_READ((r), regs[2])
#define SYSCALL_ARG4(r) BPF_CORE_READ((r), regs[3])
#else
#error "unsupported architecture: build with bpf2go -target amd64 or arm64"
#endif

/* recv flag: the bytes stay in the socket, for the next read. */
#define MSG_PEEK 2

struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	struct files_struct *files;
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct in6_addr {
	__u8 s6_addr[16];
} __attribute__((preserve_access_index));

/* 6.18 moved inum into an anonymous member of ns_common: CO-RE finds a
 * field by name through anonymous members, so this flat view fits both. */
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} __attribute__((preserve_access_index)) possible_net_t;

typedef struct {
	__s64 counter;
} __attribute__((preserve_access_index)) atomic64_t;

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	atomic64_t skc_cookie;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct socket {
	short type;
	struct sock *sk;
} __attribute__((preserve_access_index));

struct iovec {
	void *iov_base;
	__u64 iov_len;
};

struct user_msghdr {
	void *msg_name;
	int msg_namelen;
	struct iovec *msg_iov;
	__u64 msg_iovlen;
};

#endif
