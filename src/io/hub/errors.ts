/** What went wrong talking to the Hub, as a kind a caller can branch on. */
export type HubErrorKind =
  | 'unauthorized' // 401/403: gated, private, or a bad token
  | 'repo-not-found'
  | 'revision-not-found'
  | 'entry-not-found' // the file is not in the repo at that revision
  | 'offline' // offline and not in the cache
  | 'integrity' // size or sha256 mismatch
  | 'protocol' // the server did not answer like the Hub
  | 'http'; // any other HTTP failure

export class HubError extends Error {
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HubError';
  }
}
