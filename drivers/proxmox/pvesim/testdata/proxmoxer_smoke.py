"""Drive the berth PVE simulator with Debian's python3-proxmoxer, an
independent client: create, configure, start, stop and delete a container
and a VM. Usage: proxmoxer_smoke.py HOST PORT TOKENID SECRET CAFILE"""
import sys
import time

from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

host, port, tokenid, secret, cafile = sys.argv[1:6]
user, token_name = tokenid.split("!", 1)
px = ProxmoxAPI(host, port=int(port), user=user, token_name=token_name,
                token_value=secret, verify_ssl=cafile, service="PVE")
node = px.nodes("pve")


def wait(upid):
    for _ in range(1000):
        st = node.tasks(upid).status.get()
        if st["status"] == "stopped":
            if st["exitstatus"] != "OK":
                sys.exit("task %s failed: %s" % (upid, st["exitstatus"]))
            return
        time.sleep(0.01)
    sys.exit("task %s timed out" % upid)


def check(cond, what):
    if not cond:
        sys.exit("check failed: " + what)


# Container
ctid = int(px.cluster.nextid.get())
wait(node.lxc.post(vmid=ctid, ostemplate="local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst",
                   storage="local-lvm", hostname="py-ct", memory=256,
                   net0="name=eth0,bridge=vmbr0,ip=dhcp", tags="py;berth"))
ct = node.lxc(ctid)
ct.config.put(memory=512, description="from proxmoxer", delete="swap")
cfg = ct.config.get()
check(cfg["memory"] == 512, "ct memory %r" % cfg["memory"])
check(cfg["description"] == "from proxmoxer\n", "ct description %r" % cfg["description"])
check("swap" not in cfg, "ct swap deleted")
check(cfg["tags"] == "berth;py", "ct tags %r" % cfg["tags"])
wait(ct.status.start.post())
check(ct.status.current.get()["status"] == "running", "ct running")
try:
    ct.status.start.post()
    sys.exit("second start did not fail")
except ResourceException as e:
    check(e.status_code == 500 and "CT %d already running" % ctid in str(e), "error %s" % e)
wait(ct.status.shutdown.post(timeout=10))
check(ct.status.current.get()["status"] == "stopped", "ct stopped")
wait(ct.delete(purge=1))

# Virtual machine
vmid = int(px.cluster.nextid.get())
wait(node.qemu.post(vmid=vmid, name="py-vm", memory=1024, scsi0="local-lvm:4",
                    net0="virtio,bridge=vmbr0", agent="1", ipconfig0="ip=dhcp"))
vm = node.qemu(vmid)
wait(vm.config.post(cores=2, description="vm from proxmoxer"))
cfg = vm.config.get()
check(cfg["cores"] == 2, "vm cores %r" % cfg["cores"])
check(cfg["scsi0"].startswith("local-lvm:vm-%d-disk-0" % vmid), "vm disk %r" % cfg["scsi0"])
try:
    vm.config.put(cores=3, digest="0" * 40)
    sys.exit("stale digest accepted")
except ResourceException as e:
    check(e.status_code == 500 and "checksum mismatch" in str(e), "digest error %s" % e)
try:
    node.qemu.post(vmid=vmid, bogus=1)
    sys.exit("bad parameters accepted")
except ResourceException as e:
    # proxmoxer 1.2 looks for "errors" inside "data" (null), so only the
    # reason phrase carries the failure.
    check(e.status_code == 400 and e.content == "Parameter verification failed.", "400 %s" % e)
wait(vm.status.start.post())
check(vm.status.current.get()["qmpstatus"] == "running", "vm running")
ifs = vm.agent("network-get-interfaces").get()["result"]
check(any(i["name"] == "eth0" for i in ifs), "agent interfaces %r" % ifs)
wait(vm.status.stop.post())
wait(vm.delete(purge=1))
check(all(r.get("vmid") not in (ctid, vmid) for r in px.cluster.resources.get(type="vm")), "guests gone")
print("OK")
