import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import type {
  EntryState,
  ICanvasLayout,
  IEntry,
  IKernelStatus,
  IQueueRequest
} from '../contract';

/**
 * The REST routes of the contract, as calls.
 *
 * Errors are `ServerConnection.ResponseError`s whose message is the server's.
 */
export class QueueClient {
  constructor(serverSettings: ServerConnection.ISettings) {
    this.serverSettings = serverSettings;
  }

  /**
   * The server the client talks to.
   */
  readonly serverSettings: ServerConnection.ISettings;

  /**
   * `POST /api/queue`: queue code or cells; answers the queued entries.
   */
  async queue(request: IQueueRequest): Promise<IEntry[]> {
    const body = await this._request<{ entries: IEntry[] }>('api/queue', {
      method: 'POST',
      body: JSON.stringify(request)
    });
    return body.entries;
  }

  /**
   * `GET /api/queue`: list entries (running and queued first, in run order).
   */
  async list(filter: {
    kernelId?: string;
    path?: string;
    states?: EntryState[];
  }): Promise<IEntry[]> {
    const query: Record<string, string> = {};
    if (filter.kernelId) {
      query.kernel_id = filter.kernelId;
    }
    if (filter.path) {
      query.path = filter.path;
    }
    if (filter.states?.length) {
      query.state = filter.states.join(',');
    }
    const body = await this._request<{ entries: IEntry[] }>(
      'api/queue' + URLExt.objectToQueryString(query),
      { method: 'GET' }
    );
    return body.entries;
  }

  /**
   * `GET /api/queue/<id>?wait=`: the entry, once terminal or after `wait` seconds.
   */
  async get(entryId: string, wait = 0): Promise<IEntry> {
    const query =
      wait > 0 ? URLExt.objectToQueryString({ wait: `${wait}` }) : '';
    return this._request<IEntry>(
      `api/queue/${encodeURIComponent(entryId)}${query}`,
      { method: 'GET' }
    );
  }

  /**
   * `DELETE /api/queue/<id>`: cancel one entry (a running one is interrupted).
   */
  async cancel(entryId: string): Promise<IEntry> {
    return this._request<IEntry>(`api/queue/${encodeURIComponent(entryId)}`, {
      method: 'DELETE'
    });
  }

  /**
   * `DELETE /api/queue?path=` or `?kernel_id=`: clear a queue; answers the
   * ids of the cancelled entries.
   */
  async clear(scope: { kernelId?: string; path?: string }): Promise<string[]> {
    const query: Record<string, string> = {};
    if (scope.kernelId) {
      query.kernel_id = scope.kernelId;
    }
    if (scope.path) {
      query.path = scope.path;
    }
    const body = await this._request<{ cancelled: string[] }>(
      'api/queue' + URLExt.objectToQueryString(query),
      { method: 'DELETE' }
    );
    return body.cancelled;
  }

  /**
   * `POST /api/queue/<id>/input`: answer the `input()` an entry waits on.
   */
  async sendInput(entryId: string, value: string): Promise<IEntry> {
    return this._request<IEntry>(
      `api/queue/${encodeURIComponent(entryId)}/input`,
      { method: 'POST', body: JSON.stringify({ value }) }
    );
  }

  /**
   * `GET /api/kernels/<id>/status`.
   */
  async kernelStatus(kernelId: string): Promise<IKernelStatus> {
    return this._request<IKernelStatus>(
      `api/kernels/${encodeURIComponent(kernelId)}/status`,
      { method: 'GET' }
    );
  }

  /**
   * `GET /api/canvas/layout/<path>`.
   */
  async layout(path: string): Promise<ICanvasLayout> {
    return this._request<ICanvasLayout>(
      `api/canvas/layout/${URLExt.encodeParts(path)}`,
      { method: 'GET' }
    );
  }

  /**
   * The websocket URL of a server route (with the token when the server
   * settings say to append it).
   */
  wsUrl(route: string, query: Record<string, string> = {}): string {
    const settings = this.serverSettings;
    const params = { ...query };
    if (settings.appendToken && settings.token) {
      params.token = settings.token;
    }
    return (
      URLExt.join(settings.wsUrl, route) + URLExt.objectToQueryString(params)
    );
  }

  private async _request<T>(route: string, init: RequestInit): Promise<T> {
    const url = URLExt.join(this.serverSettings.baseUrl, route);
    const response = await ServerConnection.makeRequest(
      url,
      init,
      this.serverSettings
    );
    if (!response.ok) {
      throw await ServerConnection.ResponseError.create(response);
    }
    return (await response.json()) as T;
  }
}
