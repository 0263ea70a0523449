/**
 * A site's data is checked as a whole before the site takes part in anything, and again whenever its
 * files change (STYLE.md: "a bad file should fail when the operator writes the config, not stall a
 * running federation"):
 * - at start, before the daemon dials the coordinator, every file site.yaml names is read and parsed in
 *   full (every CSV cell, every IDX header and count); a bad file stops the daemon with the file, row and
 *   column. What depends on the task (classes, example shape) is checked when the task is prepared,
 *   which the daemon does as soon as it has connected (participant-app.ts);
 * - while running, the files are polled (size, mtime, inode); once a change has settled they are
 *   checked again, with the task of every prepared context. Valid: the next rounds train on the new data.
 *   Invalid: the details go to the site's own log and the site sits rounds out with the reason code
 *   SITE_DATA_INVALID alone - no path, row, column or value ever goes to the coordinator - until the
 *   files are valid again.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { FedgateError } from '../../platform/index.js';
import { loadCsv } from '../data/csv.js';
import { DataError } from '../data/errors.js';
import { loadIdxDataset } from '../data/idx.js';
import { siteDefenceError } from '../round/round-guard.js';
import { readColumnTable, type ReadTableOptions } from '../data/formats/index.js';
import { tableReadOptions, type SiteDataSpec, type TableDataSpec } from './site-data.js';

/** Any label value passes the structural check: the task's class count is applied when the task is known. */
const ANY_CLASS_COUNT = 0x7fffffff;

/**
 * An image folder whose site.yaml leaves image_shape to the task is still decoded in full at start (every
 * file must be a readable PNG or JPEG), at this small size: the task's shape is applied when it is known.
 */
const STRUCTURE_CHECK_IMAGE_SHAPE: readonly [number, number, number] = [1, 8, 8];

/** The data files `spec` names, with the site.yaml key of each. */
export function siteDataFiles(spec: SiteDataSpec): { readonly key: string; readonly path: string }[] {
  switch (spec.format) {
    case 'csv':
      return [{ key: 'data.path', path: spec.path }];
    case 'idx':
      return [
        { key: 'data.images', path: spec.images },
        { key: 'data.labels', path: spec.labels },
        ...(spec.test_images === undefined ? [] : [{ key: 'data.test_images', path: spec.test_images }]),
        ...(spec.test_labels === undefined ? [] : [{ key: 'data.test_labels', path: spec.test_labels }]),
      ];
    case 'digits':
      return [];
    case 'table':
      return [{ key: 'data.path', path: spec.path }, ...(spec.test_path === undefined ? [] : [{ key: 'data.test_path', path: spec.test_path }])];
  }
}

/**
 * Reads and parses every file of `spec` in full, without the task: every CSV row has the columns of the
 * first, every feature cell is a finite number and every label an integer class index; IDX files are
 * well formed and their images and labels agree in number. Throws the loader's DataError, whose message
 * names the file, the row and the column (for this site's operator only).
 */
export async function checkSiteDataStructure(spec: SiteDataSpec): Promise<void> {
  switch (spec.format) {
    case 'csv':
      await loadCsv(spec.path, { classes: ANY_CLASS_COUNT, label: spec.label_column, header: spec.header === 'auto' ? 'auto' : spec.header === 'yes' });
      return;
    case 'idx':
      await loadIdxDataset({ images: spec.images, labels: spec.labels, classes: ANY_CLASS_COUNT });
      if (spec.test_images !== undefined && spec.test_labels !== undefined) await loadIdxDataset({ images: spec.test_images, labels: spec.test_labels, classes: ANY_CLASS_COUNT });
      return;
    case 'digits':
      return;
    case 'table':
      // Every cell of every column is read; which columns the task maps is checked when the task is known.
      await readColumnTable(spec.path, structureReadOptions(spec));
      if (spec.test_path !== undefined) await readColumnTable(spec.test_path, structureReadOptions(spec));
      return;
  }
}

/** How the start-time check reads a table file: as the site will, an image folder at a nominal size when the task gives its shape. */
function structureReadOptions(spec: TableDataSpec): ReadTableOptions {
  return { imageShape: STRUCTURE_CHECK_IMAGE_SHAPE, ...tableReadOptions(spec) };
}

/**
 * The site's data failed its check at start (before the site dialled anyone), or did not fit the task
 * when the site first prepared it (right after connecting): the daemon stops; the coordinator learnt
 * nothing about the data either way.
 */
export class SiteDataInvalidError extends FedgateError {
  constructor(cause: unknown, when: 'start' | 'task' = 'start') {
    const detail = cause instanceof Error ? cause.message : String(cause);
    const told = when === 'start' ? 'nothing was sent to the coordinator' : 'the coordinator was told nothing about the data';
    super('FAILED_PRECONDITION', `the site's data failed validation: ${detail}. Fix the file and start the site again (${told})`, {
      reason: 'SITE_DATA_INVALID',
      cause,
    });
    this.name = 'SiteDataInvalidError';
  }
}

/** Whether `error` says that local data does not fit (a loader's DataError), as opposed to a download or device failure. */
export function isDataError(error: unknown): boolean {
  return error instanceof DataError;
}

export interface SiteDataWatchOptions {
  readonly spec: SiteDataSpec;
  /** How often the files' size, mtime and inode are compared. */
  readonly intervalMs: number;
  /**
   * Re-reads the data for every task prepared so far and hands it to their training (throws the loader's
   * DataError when the data does not fit a task); called once the structure check passed.
   */
  readonly reload: () => Promise<void>;
  readonly logger: Logger;
}

/** Polls the data files and keeps whether the site may take part in rounds. */
export class SiteDataWatch {
  private timer: NodeJS.Timeout | undefined;
  private validated: string | undefined;
  private seen: string | undefined;
  private problem: string | undefined;
  private checking = false;
  private readonly files: { readonly key: string; readonly path: string }[];

  constructor(private readonly options: SiteDataWatchOptions) {
    this.files = siteDataFiles(options.spec);
  }

  /** The start-time check; throws SiteDataInvalidError. Remembers the files as they were checked. */
  async checkAtStart(): Promise<void> {
    const signature = await this.signature();
    try {
      await checkSiteDataStructure(this.options.spec);
    } catch (error) {
      throw new SiteDataInvalidError(error);
    }
    this.validated = signature;
    this.seen = signature;
  }

  /** Starts polling (no-op without files or with interval 0). */
  start(): void {
    if (this.files.length === 0 || this.options.intervalMs <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether the data is valid now. */
  get usable(): boolean {
    return this.problem === undefined;
  }

  /**
   * Throws the site's refusal (SITE_DATA_INVALID) while its data is invalid: its message stays in the
   * site's log, the coordinator gets the code and its fixed text (participant/round/refusal.ts).
   */
  assertUsable(): void {
    if (this.problem !== undefined) throw siteDefenceError('SITE_DATA_INVALID', `the site's data failed validation after it changed: ${this.problem}`);
  }

  /**
   * The data did not fit a task when it was prepared (classes, example shape): the site sits rounds out
   * until its files change and check out.
   */
  markInvalid(error: unknown): void {
    this.problem = error instanceof Error ? error.message : String(error);
  }

  private async poll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const signature = await this.signature();
      const settled = signature === this.seen;
      this.seen = signature;
      // Act once a change has held still for one interval: a file being written is not read half-way.
      if (!settled || signature === this.validated) return;
      this.validated = signature;
      await this.recheck();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not check the data files');
    } finally {
      this.checking = false;
    }
  }

  private async recheck(): Promise<void> {
    const log = this.options.logger;
    const wasUsable = this.usable;
    try {
      await checkSiteDataStructure(this.options.spec);
      await this.options.reload();
    } catch (error) {
      this.problem = error instanceof Error ? error.message : String(error);
      log.error(
        { reason: 'SITE_DATA_INVALID', detail: this.problem, files: this.files.map((file) => file.path) },
        "the site's data files changed and are invalid: this site sits rounds out (the coordinator is told SITE_DATA_INVALID, nothing more) until they are fixed",
      );
      return;
    }
    this.problem = undefined;
    log.info({ files: this.files.map((file) => file.path), wasUsable }, wasUsable ? "the site's data files changed; the next rounds use the new data" : "the site's data files are valid again; the site takes part in rounds again");
  }

  /** Size, mtime and inode of every file (a missing file is part of the signature too). */
  private async signature(): Promise<string> {
    const parts = await Promise.all(
      this.files.map(async (file) => {
        try {
          const info = await stat(file.path);
          return `${info.size}:${info.mtimeMs}:${info.ino}`;
        } catch (error) {
          return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
        }
      }),
    );
    return parts.join('|');
  }
}
