import {
  ISessionContext,
  ToolbarButton,
  ToolbarButtonComponent
} from '@jupyterlab/apputils';
import { CodeEditor, IEditorMimeTypeService } from '@jupyterlab/codeeditor';
import {
  ABCWidgetFactory,
  DocumentRegistry,
  DocumentWidget
} from '@jupyterlab/docregistry';
import type { INotebookModel } from '@jupyterlab/notebook';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { fastForwardIcon, LabIcon } from '@jupyterlab/ui-components';
import type { QueueService } from '../queue/service';
import { english, ITrans } from '../translation';
import { CanvasView } from './view';

/**
 * The name of the canvas widget factory ("Open With → Canvas").
 */
export const CANVAS_FACTORY = 'Canvas';

/**
 * The canvas icon: four cards joined by edges.
 */
export const canvasIcon = new LabIcon({
  name: 'jupyter-canvas:canvas',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<rect x="2" y="3" width="8" height="6" rx="1"/>' +
    '<rect x="14" y="3" width="8" height="6" rx="1"/>' +
    '<rect x="8" y="15" width="8" height="6" rx="1"/>' +
    '<path d="M6 9v3h6v3h0.01M18 9v3h-6" stroke="#616161" stroke-width="1.5" fill="none"/>' +
    '</g></svg>'
});

/**
 * A notebook shown as a canvas, in a document tab.
 */
export class CanvasPanel extends DocumentWidget<CanvasView, INotebookModel> {
  constructor(
    options: DocumentWidget.IOptions<CanvasView, INotebookModel>,
    trans: ITrans = english
  ) {
    super(options);
    this.addClass('jp-CanvasPanel');
    this.title.icon = canvasIcon;
    const view = this.content;
    const add = (name: string, options: ToolbarButtonComponent.IProps) =>
      this.toolbar.addItem(name, new ToolbarButton(options));
    add('run-all', {
      icon: fastForwardIcon,
      tooltip: trans.__('Queue every code cell'),
      onClick: () => view.runAll()
    });
    add('zoom-out', {
      label: trans.__('−'),
      tooltip: trans.__('Zoom out'),
      onClick: () => view.zoomBy(1 / 1.25)
    });
    add('zoom-in', {
      label: trans.__('+'),
      tooltip: trans.__('Zoom in'),
      onClick: () => view.zoomBy(1.25)
    });
    add('fit', {
      label: trans.__('Fit'),
      tooltip: trans.__('Show every card'),
      onClick: () => view.fit()
    });
  }

  /**
   * The notebook's session (its kernel), as notebook panels expose it.
   */
  get sessionContext(): ISessionContext {
    return this.context.sessionContext;
  }
}

/**
 * Makes canvas views of notebooks, sharing the notebook's document context.
 */
export class CanvasFactory extends ABCWidgetFactory<
  CanvasPanel,
  INotebookModel
> {
  constructor(options: CanvasFactory.IOptions) {
    super(options);
    this._queue = options.queue;
    this._rendermime = options.rendermime;
    this._editorFactory = options.editorFactory;
    this._mimeTypeService = options.mimeTypeService;
    this._trans = options.trans ?? english;
  }

  protected createNewWidget(
    context: DocumentRegistry.IContext<INotebookModel>
  ): CanvasPanel {
    const content = new CanvasView({
      context,
      queue: this._queue,
      rendermime: this._rendermime,
      editorFactory: this._editorFactory,
      mimeTypeService: this._mimeTypeService,
      trans: this._trans
    });
    return new CanvasPanel({ content, context }, this._trans);
  }

  private _queue: QueueService;
  private _rendermime: IRenderMimeRegistry;
  private _editorFactory: CodeEditor.Factory;
  private _mimeTypeService?: IEditorMimeTypeService;
  private _trans: ITrans;
}

/**
 * A namespace for CanvasFactory statics.
 */
export namespace CanvasFactory {
  /**
   * Options of a CanvasFactory.
   */
  export interface IOptions extends DocumentRegistry.IWidgetFactoryOptions<CanvasPanel> {
    /** The page's connection to the queue. */
    queue: QueueService;
    /** JupyterLab's renderers. */
    rendermime: IRenderMimeRegistry;
    /** Makes the source editors. */
    editorFactory: CodeEditor.Factory;
    /** Finds the editor mode of the notebook's language. */
    mimeTypeService?: IEditorMimeTypeService;
    /** The translation bundle. */
    trans?: ITrans;
  }
}
