// One small interface per event package (RFC 6665 §4.4.2 "event package"): adding a package is one new file.
// Packages are pure: no I/O, no SIP, no SQL. The hub composes publications through them and renders NOTIFY bodies.
import type { EventPackageName, ManualDialogState } from '../service.js';

export interface PublicationInput {
  etag: string;
  contentType: string;
  body: Buffer;
  /** Unix ms of the last modify (newer wins where publications conflict). */
  updatedAt: number;
}

export interface ComposedState {
  event: EventPackageName;
  /** Short state: dialog early|confirmed|terminated, presence open|closed, message-summary yes|no. */
  summary: string;
  source: 'publication' | 'manual' | 'none';
  /** Package-specific data the renderer needs (dialogs with their ids, tags, identities...). */
  data: unknown;
}

/** A body rendered once per state change and shared by every watcher of the presentity. */
export interface RenderedBody {
  contentType: string;
  /** The bytes for one subscription; dialog-info differs only in its `version` attribute (RFC 4235 §4.1). */
  forVersion(version: number): Buffer;
}

export interface EventPackage {
  name: EventPackageName;
  /** Content type of NOTIFY bodies. */
  contentType: string;
  /** Content types accepted in PUBLISH (anything else: 415 with Accept). */
  acceptsPublish: readonly string[];
  /** Validate a PUBLISH body; a string is the reason for a 400. */
  validate(body: Buffer, contentType: string): string | null;
  /**
   * Compose the live publications (oldest first) and a manual state (dialog only) into one state. `previous` lets
   * the dialog package end a reported dialog under its own id instead of dropping it (RFC 4235 §4.3). `pubs` is
   * only read, never kept: the publication records themselves may be passed (no copy per composition).
   */
  compose(pubs: readonly PublicationInput[], manual: ManualDialogState | null, previous?: ComposedState): ComposedState;
  /** The neutral state of a presentity nothing is known about (RFC 6665 §4.2.1.2). */
  idle(): ComposedState;
  /** Render for `entity`, the watched AOR as a URI (`sip:201@example.com`). */
  render(state: ComposedState, entity: string): RenderedBody;
}
