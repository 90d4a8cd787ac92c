// The VMs the vm collector found, shared in-process with the guest collector: the guest collector
// needs each VM's entity id (to parent the `guest` view to the `vm` view) and the host socket of
// the in-guest agent's virtio-serial port (from the QEMU command line). Both collectors default to
// the process-wide `sharedVmDirectory`, so the agent needs no extra wiring.

export interface VmInfo {
  /** The `vm` entity id (QMP query-uuid when non-zero, else query-name, else the socket's basename). */
  id: string;
  name: string;
  pid?: number;
  qmpSocket: string;
  /** Host end of the virtio-serial port the in-guest agent writes to, when the VM has one. */
  agentSocket?: string;
}

export class VmDirectory {
  private vms = new Map<string, VmInfo>();
  /** Replaces the set (the vm collector calls it after each discovery). */
  set(vms: readonly VmInfo[]): void {
    this.vms = new Map(vms.map((v) => [v.qmpSocket, v]));
  }
  list(): VmInfo[] {
    return [...this.vms.values()];
  }
}

export const sharedVmDirectory = new VmDirectory();
