// Package k8s tells the container and Kubernetes identity of processes.
//
// From the node alone, with no API: [Identify] reads a process's container
// id, runtime and pod uid from its cgroup paths ([ParseCgroup]), and for a
// process in a pod its namespace, pod name and container name from what
// kubelet leaves on the node (log links, the service-account namespace
// file, the pod's hostname). [NodeName] names the node.
//
// With the API (opt-in): a [Watcher] follows the pods of this node and
// adds the container's name, the node, the owning workloads and the
// service identity the semantic conventions derive for Kubernetes.
//
// Rule throughout: a fact that is not known for sure is left out, never
// guessed. Bounds: every file read is capped at 64 KiB and read only if it
// is a regular file inside the process's own root; a directory scan stops
// at 100 000 entries; the watcher keeps about 1 KB of each pod of the node
// (2.8 KB with its indexes) and one entry per ReplicaSet or Job they run
// under, whatever the size of the cluster.
package k8s // import "github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"
