/** One row of the figures table a fault suite prints at its end. */
export interface FaultFigure {
  readonly driver: string;
  readonly scenario: string;
  /** Messages the scenario published (or injected). */
  readonly messages?: number;
  readonly resolved?: number;
  readonly rejected?: number;
  /** Resolved but never delivered within the bounded wait. */
  readonly lost?: number;
  /** Extra deliveries (at-least-once redeliveries). */
  readonly duplicates?: number;
  /** From the fault's end (broker back, connection restored, consumer killed) to the next delivery. */
  readonly recoveryMs?: number;
  readonly peakRssMiB?: number;
  readonly rssGrowthMiB?: number;
  readonly wallMs?: number;
  readonly note?: string;
}

const COLUMNS: readonly [keyof FaultFigure, string][] = [
  ['driver', 'driver'],
  ['scenario', 'scenario'],
  ['messages', 'msgs'],
  ['resolved', 'resolved'],
  ['rejected', 'rejected'],
  ['lost', 'lost'],
  ['duplicates', 'dups'],
  ['recoveryMs', 'recovery ms'],
  ['peakRssMiB', 'peak RSS MiB'],
  ['rssGrowthMiB', 'RSS +MiB'],
  ['wallMs', 'wall ms'],
  ['note', 'note'],
];

function cell(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(0);
  return String(value);
}

/** A Markdown table of the figures (pasteable into docs as is). */
export function figuresTable(rows: readonly FaultFigure[]): string {
  const header = `| ${COLUMNS.map(([, title]) => title).join(' | ')} |`;
  const rule = `|${COLUMNS.map(() => '---').join('|')}|`;
  const lines = rows.map((row) => `| ${COLUMNS.map(([name]) => cell(row[name])).join(' | ')} |`);
  return [header, rule, ...lines].join('\n');
}

/** Collects a suite's figures and prints them once, in scenario order, when the suite ends. */
export class FigureBook {
  readonly rows: FaultFigure[] = [];
  add(row: FaultFigure): void {
    this.rows.push(row);
    console.log(`[faults] ${row.driver} ${row.scenario}: ${JSON.stringify(row)}`);
  }
  print(title: string): void {
    if (this.rows.length > 0) console.log(`\n${title}\n${figuresTable(this.rows)}\n`);
  }
}
