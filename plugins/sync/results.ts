// What a sync run reports: one result per image and the summary of the run.

export interface ItemResult {
  set?: string;
  source: string;
  destination: string;
  /** Every tag the destination got, when more than its reference's own were asked for. */
  tags?: string[];
  /** How many of those did not point at the image before this run (set or moved by it). */
  tagged?: number;
  /** The mirror it was read from, when a registry mirror served it. */
  via?: string;
  /** 'copied': something was transferred; 'skipped': the destination had everything. */
  status: 'copied' | 'skipped' | 'failed';
  digest?: string;
  /** Blobs and manifests transferred for this image. */
  copied: number;
  bytes: number;
  error?: string;
  hint?: string;
}

export interface SyncSummary {
  images: { copied: number; skipped: number; failed: number };
  /** Blobs and manifests transferred, and found already there. */
  blobs: { copied: number; skipped: number };
  bytes: number;
  seconds: number;
  items: ItemResult[];
  /** Bundle files written. */
  bundles: string[];
}
