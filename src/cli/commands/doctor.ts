// `portway doctor`: compare this network namespace's live state with what the manifests ask for.
// Gathers inputs (iptables-save of both families, sysctls, running processes) and lets the pure
// diagnose() judge them. Exit 0 when every check passes, 1 when something is wrong, 2 on error.
import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load.js';
import { createRunner } from '../../dataplane/exec.js';
import { RealIpLinks } from '../../dataplane/ip.js';
import { parseIptablesSave } from '../../dataplane/iptables-text.js';
import { createIptables, detectIptablesBackend } from '../../dataplane/iptables.js';
import { createSysctl } from '../../dataplane/sysctl.js';
import type { IPFamily } from '../../model/cluster-state.js';
import { ipFamilyOf } from '../../model/ip.js';
import { printableLines } from '../../model/names.js';
import { renderIptables, renderOptionsFromConfig } from '../../render/iptables/index.js';
import { planSysctls } from '../../sync/sysctls.js';
import { diagnose, formatDoctor, type DoctorInputs } from '../../troubleshoot/doctor.js';
import { RealIpvsLiveReader } from '../../dataplane/ipvs-live.js';
import { ipvsWantedSysctls, readIpvsForDoctor, renderIpvsFamilies } from '../../troubleshoot/ipvs-doctor.js';
import { evaluateIngresses, ingressDoctorFindings } from '../../ingress/index.js';
import { CliExit } from '../exit.js';
import { addInputOptions, readCommandInput, type ClusterInputFlags } from '../cluster-input.js';
import { formatStructured, isStructured, outputOption } from '../output.js';
import { withAllocatedAddresses } from './dry-run.js';
import { localhostNodePortsWanted } from './run.js';
import { nodeIPsFromInterfaces } from '../node-identity.js';

/** Command names of running processes, from /proc/PID/comm. */
export async function runningProcesses(procRoot = '/proc'): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      names.push((await readFile(join(procRoot, entry, 'comm'), 'utf8')).trim());
    } catch {
      // The process ended while we looked.
    }
  }
  return names;
}

export function registerDoctorCommand(program: Command): void {
  const cmd = program
    .command('doctor')
    .description(
      "check this node's live rules, sysctls, a kube-proxy beside it and the other iptables backend against what the manifests (or the cluster) ask for",
    );
  addInputOptions(cmd, {
    cluster: true,
    alias: '--manifests',
    description: 'manifests the node should be programmed from',
  });
  cmd
    .option('--config <file>', 'agent configuration (YAML or JSON)')
    .addOption(outputOption(['text', 'json', 'yaml'], 'text'))
    .action(async (opts: ClusterInputFlags & { manifests?: string[]; config?: string; output: string }) => {
      const config = await loadConfigFile(opts.config);
      const state = await readCommandInput(opts);
      const desiredState = withAllocatedAddresses(state, config);
      const runner = createRunner({});
      const nodeIPs =
        config.nodeIPs.length > 0
          ? config.nodeIPs
          : nodeIPsFromInterfaces(await new RealIpLinks({ runner }).listAddresses());
      const families = (['IPv4', 'IPv6'] as IPFamily[]).filter((f) =>
        nodeIPs.some((ip) => ipFamilyOf(ip) === f),
      );
      const effective = { ...config, nodeName: config.nodeName || hostname() };
      // ipvs mode: its constant rules replace iptables mode's in the rule check; IPVS, sets, addresses below.
      const ipvsRuleSets = config.mode === 'ipvs' ? renderIpvsFamilies(desiredState, effective, families, nodeIPs) : null;
      const choice = await detectIptablesBackend(runner);
      const other = choice.backend === 'nft' ? 'legacy' : 'nft';

      const inputs: DoctorInputs = {
        families: [],
        sysctls: [],
        processes: await runningProcesses(),
        backend: { inUse: choice.backend, otherBackendHasKubeChains: false },
        mode: config.mode,
      };
      for (const family of families) {
        const iptables = await createIptables({ family, backend: choice.backend, runner });
        const saved = parseIptablesSave((await iptables.save('filter')) + (await iptables.save('nat')));
        const ips = nodeIPs.filter((ip) => ipFamilyOf(ip) === family);
        inputs.families.push({
          family,
          desired:
            ipvsRuleSets?.find((rs) => rs.family === family)?.iptables ??
            renderIptables(desiredState, renderOptionsFromConfig(effective, family, ips)),
          saved,
        });
        // Whole-dump save without -t: asking the legacy backend for one table would create it.
        const otherSave = `${family === 'IPv6' ? 'ip6tables' : 'iptables'}-${other}-save`;
        const otherDump = await runner.run(otherSave, []).then(
          (r) => r.stdout,
          () => '',
        );
        if (/^:KUBE-(SERVICES|POSTROUTING)\b/m.test(otherDump))
          inputs.backend.otherBackendHasKubeChains = true;
      }
      const sysctl = createSysctl();
      const wantedSysctls = ipvsRuleSets
        ? ipvsWantedSysctls(ipvsRuleSets, effective)
        : planSysctls(families, localhostNodePortsWanted(effective, families, nodeIPs));
      if (ipvsRuleSets)
        inputs.ipvs = { desired: ipvsRuleSets, ...(await readIpvsForDoctor(new RealIpvsLiveReader({ runner }))) };
      for (const wanted of wantedSysctls) {
        inputs.sysctls.push({ wanted, actual: await sysctl.get(wanted.key) });
      }
      const findings = diagnose(inputs);
      findings.push(...ingressDoctorFindings(evaluateIngresses(desiredState, config.ingress.classes, config.nodePortAddresses)));
      process.stdout.write(
        isStructured(opts.output)
          ? await formatStructured(findings, opts.output)
          : // Live rules may carry any comment bytes: no control character reaches the terminal.
            printableLines(formatDoctor(findings)),
      );
      if (findings.some((f) => f.severity !== 'ok')) throw new CliExit(1);
    });
}
