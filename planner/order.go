package planner

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"
)

// topoSort orders nodes so every node comes after the nodes it depends on,
// ties broken by ID, and sorts each node's DependsOn. Edges to unknown IDs
// are dropped. A cycle is an error naming it (the manifest rejects cycles
// in depends_on; this is the planner's own guard).
func topoSort(nodes []*Node) ([]*Node, error) {
	byID := make(map[string]*Node, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
	}
	indeg := make(map[string]int, len(nodes))
	dependents := make(map[string][]*Node, len(nodes))
	for _, n := range nodes {
		deps := n.DependsOn[:0]
		for _, d := range n.DependsOn {
			if byID[d] != nil && d != n.ID {
				deps = append(deps, d)
			} else if d == n.ID {
				return nil, fmt.Errorf("planner: dependency cycle: %s -> %s", d, d)
			}
		}
		sort.Strings(deps)
		n.DependsOn = deps
		if len(deps) == 0 {
			n.DependsOn = nil
		}
		indeg[n.ID] = len(deps)
		for _, d := range deps {
			dependents[d] = append(dependents[d], n)
		}
	}
	ready := &idHeap{}
	for _, n := range nodes {
		if indeg[n.ID] == 0 {
			*ready = append(*ready, n)
		}
	}
	heap.Init(ready)
	out := make([]*Node, 0, len(nodes))
	for ready.Len() > 0 {
		n := heap.Pop(ready).(*Node)
		out = append(out, n)
		for _, m := range dependents[n.ID] {
			indeg[m.ID]--
			if indeg[m.ID] == 0 {
				heap.Push(ready, m)
			}
		}
	}
	if len(out) < len(nodes) {
		return nil, fmt.Errorf("planner: dependency cycle: %s", findCycle(nodes, byID, indeg))
	}
	return out, nil
}

// findCycle returns one cycle among the nodes left unsorted, as
// "a -> b -> a", starting at the smallest ID on it.
func findCycle(nodes []*Node, byID map[string]*Node, indeg map[string]int) string {
	var left []string
	for _, n := range nodes {
		if indeg[n.ID] > 0 {
			left = append(left, n.ID)
		}
	}
	sort.Strings(left)
	// Every unsorted node has an unsorted dependency; walking the
	// smallest such one from any start must revisit a node.
	seen := map[string]int{}
	var path []string
	cur := left[0]
	for {
		if i, ok := seen[cur]; ok {
			cyc := path[i:]
			// Rotate so the smallest ID leads, for a stable message.
			min := 0
			for j := range cyc {
				if cyc[j] < cyc[min] {
					min = j
				}
			}
			cyc = append(append([]string{}, cyc[min:]...), cyc[:min]...)
			return strings.Join(append(cyc, cyc[0]), " -> ")
		}
		seen[cur] = len(path)
		path = append(path, cur)
		next := ""
		for _, d := range byID[cur].DependsOn {
			if indeg[d] > 0 {
				next = d
				break
			}
		}
		if next == "" {
			return strings.Join(path, " -> ")
		}
		cur = next
	}
}

// idHeap is a min-heap of nodes by ID.
type idHeap []*Node

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i].ID < h[j].ID }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(*Node)) }
func (h *idHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	*h = old[:len(old)-1]
	return n
}
