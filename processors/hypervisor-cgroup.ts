// Which container, if any, a VM's hypervisor process runs inside. KubeVirt runs QEMU in the
// `compute` container of a virt-launcher pod; libvirt in a machine.slice scope the cgroup
// collector may report too. The kernel then charges that container with the VM's hypervisor CPU
// and its disk I/O, which the vm view reports as well: counted once per layer, they would be
// counted twice (docs/overhead.md, "VMs inside containers"). Shared by the overhead and
// noisy-neighbor stages.
import type { EntityView } from './rates/rates.ts';

/**
 * For each vm view whose `hypervisor_cgroup` label lies in (or under) a container's
 * `cgroup_path` (both views of the host), that container's view. The deepest container wins.
 *
 * A path read from another cgroup namespace (`/../../kubepods…/cri-containerd-<id>.scope`, an
 * agent in a container without `--cgroupns=host`) cannot be compared with the container's absolute
 * path; it is matched by the container's own directory name (a container id, unique on a node)
 * among its components.
 */
export function vmsInContainers(views: readonly EntityView[]): Map<EntityView, EntityView> {
  const out = new Map<EntityView, EntityView>();
  let containers: EntityView[] | undefined;
  for (const v of views) {
    if (v.layer !== 'vm' || v.sample.entity.labels.hypervisor_cgroup === undefined) continue;
    if (!onHost(v)) continue;
    containers ??= views.filter(
      (c) => c.layer === 'container' && c.sample.entity.labels.cgroup_path !== undefined && onHost(c),
    );
    const c = containerOf(v.sample.entity.labels.hypervisor_cgroup, containers);
    if (c !== undefined) out.set(v, c);
  }
  return out;
}

/** A view of the host's own (not nested in a guest): only those share its cgroups. */
function onHost(v: EntityView): boolean {
  const parent = v.sample.entity.parent;
  return parent === undefined || parent.layer === 'host';
}

function containerOf(hypervisor: string, containers: readonly EntityView[]): EntityView | undefined {
  const foreign = hypervisor.startsWith('/../') || hypervisor === '/..';
  const components = foreign ? hypervisor.split('/') : undefined;
  let best: EntityView | undefined;
  let bestLen = -1;
  for (const c of containers) {
    const path = c.sample.entity.labels.cgroup_path as string;
    if (path === '/' || path === '') continue; // the root holds everything: not a container
    let inside: boolean;
    if (components) {
      const own = path.slice(path.lastIndexOf('/') + 1);
      inside = own !== '' && own !== '..' && components.includes(own);
    } else inside = hypervisor === path || hypervisor.startsWith(`${path}/`);
    if (inside && path.length > bestLen) {
      best = c;
      bestLen = path.length;
    }
  }
  return best;
}
