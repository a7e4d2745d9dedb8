import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import {
  CANVAS_FACTORY,
  CanvasFactory,
  CanvasPanel,
  canvasIcon
} from '../canvas/panel';
import { IQueueService } from '../tokens';
import { TRANSLATION_DOMAIN } from '../translation';

/**
 * The id of the "Open as Canvas" command.
 */
export const OPEN_CANVAS = 'jupyter-canvas:open-canvas';

/**
 * The canvas view of notebooks: "Open as Canvas" on a notebook (command,
 * palette, notebook toolbar, Open With menu) shows its cells as cards on a
 * shared plane.
 */
export const canvasPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-canvas:canvas',
  description: 'Opens notebooks as a canvas of cards shared by every peer.',
  autoStart: true,
  requires: [
    IQueueService,
    IRenderMimeRegistry,
    IEditorServices,
    IDocumentManager,
    INotebookTracker
  ],
  optional: [ICommandPalette, ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    queue: IQueueService,
    rendermime: IRenderMimeRegistry,
    editorServices: IEditorServices,
    docManager: IDocumentManager,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load(TRANSLATION_DOMAIN);
    const factory = new CanvasFactory({
      name: CANVAS_FACTORY,
      label: trans.__('Canvas'),
      fileTypes: ['notebook'],
      modelName: 'notebook',
      // The canvas shows the notebook's kernel when it has one; running a
      // card without one lets the server start the notebook's session.
      preferKernel: false,
      canStartKernel: false,
      queue,
      rendermime,
      editorFactory: editorServices.factoryService.newInlineEditor,
      mimeTypeService: editorServices.mimeTypeService,
      trans
    });
    const tracker = new WidgetTracker<CanvasPanel>({
      namespace: 'jupyter-canvas'
    });
    factory.widgetCreated.connect((_, widget) => {
      widget.context.pathChanged.connect(() => void tracker.save(widget));
      void tracker.add(widget);
    });
    app.docRegistry.addWidgetFactory(factory);
    if (restorer) {
      void restorer.restore(tracker, {
        command: 'docmanager:open',
        args: widget => ({
          path: widget.context.path,
          factory: CANVAS_FACTORY
        }),
        name: widget => widget.context.path
      });
    }

    app.commands.addCommand(OPEN_CANVAS, {
      label: args =>
        args.toolbar ? trans.__('Canvas') : trans.__('Open as Canvas'),
      caption: trans.__('Show the notebook as a canvas of cards'),
      describedBy: {
        args: {
          type: 'object',
          properties: {
            path: { type: 'string', description: 'The notebook to open' },
            toolbar: {
              type: 'boolean',
              description: 'Shown as a toolbar button'
            }
          }
        }
      },
      icon: args => (args.toolbar ? undefined : canvasIcon),
      isEnabled: () =>
        typeof notebooks.currentWidget?.context.path === 'string',
      execute: args => {
        const panel = notebooks.currentWidget;
        const path = (args.path as string | undefined) ?? panel?.context.path;
        if (!path) {
          return;
        }
        return docManager.openOrReveal(path, CANVAS_FACTORY, undefined, {
          mode: 'split-right',
          ref: panel?.id
        });
      }
    });
    palette?.addItem({
      command: OPEN_CANVAS,
      category: trans.__('Notebook Operations')
    });
  }
};
