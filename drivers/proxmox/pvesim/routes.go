package pvesim

// routes maps "METHOD /schema/path" to its handler. Every endpoint of the
// API subset has one (TestEveryEndpointRouted).
var routes map[string]handlerFunc

func init() {
	routes = map[string]handlerFunc{
		"GET /version":             hVersion,
		"GET /access/ticket":       hGetTicket,
		"POST /access/ticket":      hCreateTicket,
		"GET /nodes":               hNodes,
		"GET /nodes/{node}/status": hNodeStatus,
		"GET /cluster/resources":   hResources,
		"GET /cluster/nextid":      hNextID,
		"GET /cluster/status":      hClusterStatus,
		"GET /cluster/tasks":       hClusterTasks,

		"GET /nodes/{node}/lxc":                         listGuests("lxc"),
		"POST /nodes/{node}/lxc":                        hLXCCreate,
		"GET /nodes/{node}/lxc/{vmid}":                  guestIndex("lxc"),
		"DELETE /nodes/{node}/lxc/{vmid}":               hLXCDelete,
		"GET /nodes/{node}/lxc/{vmid}/config":           getConfig("lxc"),
		"GET /nodes/{node}/lxc/{vmid}/pending":          getPending("lxc"),
		"GET /nodes/{node}/lxc/{vmid}/status":           statusIndex("lxc"),
		"GET /nodes/{node}/lxc/{vmid}/status/current":   statusCurrent("lxc"),
		"POST /nodes/{node}/lxc/{vmid}/status/start":    lxcPower("start"),
		"POST /nodes/{node}/lxc/{vmid}/status/stop":     lxcPower("stop"),
		"POST /nodes/{node}/lxc/{vmid}/status/shutdown": lxcPower("shutdown"),
		"POST /nodes/{node}/lxc/{vmid}/status/reboot":   lxcPower("reboot"),
		"GET /nodes/{node}/lxc/{vmid}/interfaces":       hLXCInterfaces,
		"PUT /nodes/{node}/lxc/{vmid}/config":           putConfig("lxc"),
		"POST /nodes/{node}/lxc/{vmid}/clone":           cloneGuest("lxc"),
		"PUT /nodes/{node}/lxc/{vmid}/resize":           resizeDisk("lxc"),
		"POST /nodes/{node}/lxc/{vmid}/template":        makeTemplate("lxc"),

		"GET /nodes/{node}/qemu":                                     listGuests("qemu"),
		"GET /nodes/{node}/qemu/{vmid}":                              guestIndex("qemu"),
		"GET /nodes/{node}/qemu/{vmid}/config":                       getConfig("qemu"),
		"GET /nodes/{node}/qemu/{vmid}/pending":                      getPending("qemu"),
		"GET /nodes/{node}/qemu/{vmid}/status":                       statusIndex("qemu"),
		"GET /nodes/{node}/qemu/{vmid}/status/current":               statusCurrent("qemu"),
		"POST /nodes/{node}/qemu":                                    hQemuCreate,
		"DELETE /nodes/{node}/qemu/{vmid}":                           hQemuDelete,
		"PUT /nodes/{node}/qemu/{vmid}/config":                       putConfig("qemu"),
		"POST /nodes/{node}/qemu/{vmid}/config":                      hQemuPostConfig,
		"POST /nodes/{node}/qemu/{vmid}/status/start":                qemuPower("start"),
		"POST /nodes/{node}/qemu/{vmid}/status/stop":                 qemuPower("stop"),
		"POST /nodes/{node}/qemu/{vmid}/status/shutdown":             qemuPower("shutdown"),
		"POST /nodes/{node}/qemu/{vmid}/status/reboot":               qemuPower("reboot"),
		"POST /nodes/{node}/qemu/{vmid}/status/reset":                qemuPower("reset"),
		"POST /nodes/{node}/qemu/{vmid}/clone":                       cloneGuest("qemu"),
		"PUT /nodes/{node}/qemu/{vmid}/resize":                       resizeDisk("qemu"),
		"POST /nodes/{node}/qemu/{vmid}/template":                    makeTemplate("qemu"),
		"GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces": hAgentNetwork,

		"GET /nodes/{node}/storage":                               hStorageList,
		"GET /nodes/{node}/storage/{storage}/status":              hStorageStatus,
		"GET /nodes/{node}/storage/{storage}/content":             hStorageContent,
		"GET /nodes/{node}/storage/{storage}/content/{volume}":    hVolumeGet,
		"DELETE /nodes/{node}/storage/{storage}/content/{volume}": hVolumeDelete,
		"POST /nodes/{node}/storage/{storage}/download-url":       hDownloadURL,
		"GET /nodes/{node}/aplinfo":                               hAplinfo,
		"POST /nodes/{node}/aplinfo":                              hAplDownload,

		"GET /nodes/{node}/tasks":               hNodeTasks,
		"GET /nodes/{node}/tasks/{upid}":        hTaskIndex,
		"DELETE /nodes/{node}/tasks/{upid}":     hTaskStop,
		"GET /nodes/{node}/tasks/{upid}/status": hTaskStatus,
		"GET /nodes/{node}/tasks/{upid}/log":    hTaskLog,
	}
}
