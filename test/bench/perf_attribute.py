#!/usr/bin/env python3
"""Where do the backends of a pgbench run spend their time?

    perf script -F ip,sym,symoff,dso -i perf.data | perf_attribute.py APPROVAL_SO

reads the call chains of "perf record -g" samples of PostgreSQL backends and
prints one line per bucket, most samples first, as a Markdown table:

  SPI <plan>        a statement the extension runs through approval_exec(),
                    named after its ApprovalPlan (the call site of approval_exec
                    is matched to the plan whose address is loaded just before
                    the call, read from "objdump -d APPROVAL_SO")
  C <function>      the extension's own code, with what it calls outside SPI
                    (jsonb parsing, sha256, building notifications, ...)
  PL/pgSQL ...      statements and expressions of a PL/pgSQL function
  commit ...        COMMIT, split into PreCommit_Notify (the global NOTIFY lock
                    and the queue) and the rest
  client I/O        waiting for the next query, sending the result
  top-level ...     parse, analysis and planning of the query pgbench sends
  other             everything else, mostly kernel scheduling and libc
                    functions whose callers cannot be seen (no frame pointers)

APPROVAL_SO must be the very file the server had loaded (tools/bench.sh
checks the build id before it calls this script).
"""
import collections
import re
import subprocess
import sys


def call_sites(so):
    """{(function, call address): plan name} for every call of approval_exec"""
    out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', so],
                         capture_output=True, text=True, check=True).stdout
    func = None
    plan = None
    sites = collections.defaultdict(list)
    starts = {}
    for line in out.splitlines():
        m = re.match(r'^([0-9a-f]+) <(.*)>:$', line)
        if m:
            func = m.group(2)
            starts[func] = int(m.group(1), 16)
            plan = None
            continue
        m = re.match(r'\s+([0-9a-f]+):\s+(\S+)\s+(.*)$', line)
        if not m:
            continue
        addr, op, rest = int(m.group(1), 16), m.group(2), m.group(3)
        p = re.search(r'<(\w+)>', rest)
        if op == 'lea' and p and not p.group(1).endswith('@plt'):
            plan = p.group(1)
        if op == 'call' and 'approval_exec@plt' in rest:
            sites[func].append((addr, plan or '?'))
    return starts, sites


def plan_of(symoff, starts, sites):
    m = re.match(r'(.*)\+0x([0-9a-f]+)$', symoff)
    if not m or m.group(1) not in starts:
        return symoff
    ret = starts[m.group(1)] + int(m.group(2), 16)
    best = None
    for addr, plan in sites.get(m.group(1), []):
        if addr < ret and (best is None or addr > best[0]):
            best = (addr, plan)
    return best[1] if best else symoff


CLIENT = {'pq_getbyte', 'secure_read', 'ReadCommand', 'socket_flush', 'pq_flush',
          'secure_write', 'internal_flush', 'pq_getmessage'}
TOPLEVEL = {'pg_analyze_and_rewrite_fixedparams', 'pg_parse_query', 'pg_plan_queries',
            'raw_parser', 'exec_simple_query_parse'}
PLPGSQL_SPI = {'SPI_execute_plan_with_paramlist', '_SPI_execute_plan', 'SPI_execute_plan'}


def bucket(chain, starts, sites):
    syms = [re.sub(r'\+0x[0-9a-f]+$', '', s) for s, _ in chain]
    dsos = [d for _, d in chain]
    if 'CommitTransactionCommand' in syms:
        inner = syms[:syms.index('CommitTransactionCommand')]
        if 'PreCommit_Notify' in inner:
            return 'commit: PreCommit_Notify (global NOTIFY lock, queue)'
        return 'commit: the rest'
    ours = [i for i, d in enumerate(dsos) if d.startswith('approval')]
    if ours:
        s = syms[ours[0]]
        if s in ('approval_exec', 'approval_exec_prepare') and len(ours) > 1:
            return 'SPI ' + plan_of(chain[ours[1]][0], starts, sites)
        return 'C ' + s
    if any(d.startswith('plpgsql') for d in dsos):
        if any(s in PLPGSQL_SPI for s in syms):
            return 'PL/pgSQL: SQL statements'
        return 'PL/pgSQL: expressions and interpreter'
    if any(s in CLIENT for s in syms) or syms[:1] == ['__send']:
        return 'client I/O'
    if any(s in TOPLEVEL for s in syms):
        return 'top-level parse, analysis, plan'
    return 'other'


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    so = args[0]
    starts, sites = call_sites(so)
    samples = []
    cur = []
    for line in sys.stdin:
        line = line.rstrip('\n')
        if not line.strip():
            if cur:
                samples.append(cur)
                cur = []
            continue
        m = re.match(r'\s*([0-9a-f]+) (.*) \((.*)\)$', line)
        if m:
            cur.append((m.group(2), m.group(3).rsplit('/', 1)[-1]))
    if cur:
        samples.append(cur)
    if not samples:
        sys.exit('perf_attribute.py: no samples')
    counts = collections.Counter(bucket(c, starts, sites) for c in samples)
    total = len(samples)
    shown = 0.0
    print('| share | where |')
    print('|---:|---|')
    for key, n in counts.most_common():
        share = 100.0 * n / total
        if share < 0.5:
            break
        shown += share
        print(f'| {share:.1f}% | {key} |')
    if 100.0 - shown >= 0.05:
        print(f'| {100.0 - shown:.1f}% | (buckets under 0.5% each) |')
    print(f'\n{total} samples.')


if __name__ == '__main__':
    main()
