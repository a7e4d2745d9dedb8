import type { ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import { CodeEditor, CodeEditorWrapper } from '@jupyterlab/codeeditor';
import { OutputArea } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime';
import { PanelLayout, Widget } from '@lumino/widgets';
import type { ICellPlacement } from '../contract';
import { english, ITrans } from '../translation';

/**
 * What a card asks of its canvas.
 */
export interface ICardHost {
  /** Run the cell (its current source). */
  run(card: CanvasCard): void;
  /** Run the cells of the heading's group. */
  runGroup(card: CanvasCard): void;
  /** Fold or unfold the card for every peer. */
  toggleCollapsed(card: CanvasCard): void;
  /** The header was pressed: the canvas takes over the drag. */
  startDrag(card: CanvasCard, event: PointerEvent): void;
}

/**
 * One notebook cell on the canvas: a header to drag it by (with its queue
 * state and run buttons), its source in an editor bound to the shared
 * document, and for code cells its outputs rendered by JupyterLab's renderers.
 */
export class CanvasCard extends Widget {
  constructor(options: CanvasCard.IOptions) {
    super();
    this.model = options.model;
    this._host = options.host;
    this._trans = options.trans ?? english;
    this.addClass('jp-CanvasCard');
    this.addClass(`jp-CanvasCard-${this.model.type}`);
    this.node.dataset.cellId = this.model.id;
    const layout = (this.layout = new PanelLayout());

    this.header = this._createHeader();
    layout.addWidget(new Widget({ node: this.header }));

    this._editor = new CodeEditorWrapper({
      factory: options.editorFactory,
      model: this.model,
      editorOptions: { config: { lineNumbers: false, lineWrap: true } }
    });
    this._editor.addClass('jp-CanvasCard-editor');
    // Shift-Enter runs the card, as in a notebook; it must beat the editor.
    this._editor.node.addEventListener(
      'keydown',
      event => {
        if (event.key === 'Enter' && event.shiftKey) {
          event.preventDefault();
          event.stopPropagation();
          if (this.model.type === 'code') {
            this._host.run(this);
          } else {
            this._showRendered(true);
          }
        }
      },
      true
    );
    layout.addWidget(this._editor);

    if (this.model.type === 'code') {
      const codeModel = this.model as ICodeCellModel;
      this._outputs = new OutputArea({
        model: codeModel.outputs,
        rendermime: options.rendermime,
        contentFactory: OutputArea.defaultContentFactory
      });
      this._outputs.addClass('jp-CanvasCard-outputs');
      layout.addWidget(this._outputs);
      codeModel.stateChanged.connect(this._updateCount, this);
      this._updateCount();
    } else if (this.model.type === 'markdown') {
      this._markdown = options.rendermime.createRenderer('text/markdown');
      this._markdown.addClass('jp-CanvasCard-markdown');
      layout.addWidget(this._markdown);
      this._markdown.node.addEventListener('dblclick', () =>
        this._showRendered(false)
      );
      this._editor.node.addEventListener('focusout', () => {
        // Back to the rendered text once the editor loses the focus.
        setTimeout(() => {
          if (!this._editor.node.contains(document.activeElement)) {
            this._showRendered(true);
          }
        }, 0);
      });
      this.model.sharedModel.changed.connect(this._scheduleMarkdown, this);
      this._showRendered(true);
    }
  }

  /**
   * The cell shown.
   */
  readonly model: ICellModel;

  /**
   * The header (drag handle, queue badge, buttons).
   */
  readonly header: HTMLElement;

  /**
   * The id of the cell shown.
   */
  get cellId(): string {
    return this.model.id;
  }

  /**
   * The editor of the cell's source.
   */
  get editor(): CodeEditor.IEditor | null {
    return this._editor.editor;
  }

  /**
   * The outputs of a code cell (null for other cells).
   */
  get outputArea(): OutputArea | null {
    return this._outputs;
  }

  /**
   * Where the card is drawn (plane units); also exposed as data attributes.
   */
  get placement(): ICellPlacement | null {
    return this._placement;
  }

  /**
   * Put the card at a placement.
   */
  setPlacement(placement: ICellPlacement): void {
    const previous = this._placement;
    this._placement = placement;
    const style = this.node.style;
    style.left = `${placement.x}px`;
    style.top = `${placement.y}px`;
    style.width = `${placement.width}px`;
    style.minHeight = placement.collapsed
      ? ''
      : `${Math.min(placement.height, 400)}px`;
    this.node.dataset.x = `${Math.round(placement.x)}`;
    this.node.dataset.y = `${Math.round(placement.y)}`;
    this.toggleClass('jp-mod-collapsed', placement.collapsed);
    if (!previous || previous.collapsed !== placement.collapsed) {
      this._collapseButton.textContent = placement.collapsed ? '▸' : '▾';
      this._collapseButton.title = placement.collapsed
        ? this._trans.__('Unfold')
        : this._trans.__('Fold');
    }
  }

  /**
   * Show or hide the "run group" button (for a markdown heading).
   */
  setHeadingLevel(level: number): void {
    this._groupButton.hidden = level === 0;
    this.toggleClass('jp-mod-heading', level > 0);
    this.node.dataset.headingLevel = `${level}`;
  }

  /**
   * The card's height on the plane (unscaled).
   */
  measuredHeight(): number {
    return this.node.offsetHeight;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._markdownTimer !== null) {
      clearTimeout(this._markdownTimer);
    }
    this.model.sharedModel.changed.disconnect(this._scheduleMarkdown, this);
    if (this.model.type === 'code') {
      (this.model as ICodeCellModel).stateChanged.disconnect(
        this._updateCount,
        this
      );
    }
    super.dispose();
  }

  private _createHeader(): HTMLElement {
    const header = document.createElement('div');
    header.className = 'jp-CanvasCard-header';
    header.title = this._trans.__('Drag to move the cell');

    this._collapseButton = this._button('jp-CanvasCard-collapse', '▾', () =>
      this._host.toggleCollapsed(this)
    );
    header.appendChild(this._collapseButton);

    this._label = document.createElement('span');
    this._label.className = 'jp-CanvasCard-label';
    this._label.textContent =
      this.model.type === 'code' ? '[ ]' : this.model.type;
    header.appendChild(this._label);

    const spacer = document.createElement('span');
    spacer.className = 'jp-CanvasCard-spacer';
    header.appendChild(spacer);

    this._groupButton = this._button(
      'jp-CanvasCard-runGroup',
      '▶▶',
      () => this._host.runGroup(this),
      this._trans.__('Run the code cells of this heading')
    );
    this._groupButton.hidden = true;
    header.appendChild(this._groupButton);

    if (this.model.type === 'code') {
      header.appendChild(
        this._button(
          'jp-CanvasCard-run',
          '▶',
          () => this._host.run(this),
          this._trans.__('Run this cell (Shift+Enter)')
        )
      );
    }
    header.addEventListener('pointerdown', event => {
      if (
        event.button !== 0 ||
        (event.target as HTMLElement).closest('button, input, form')
      ) {
        return;
      }
      this._host.startDrag(this, event);
    });
    return header;
  }

  private _button(
    className: string,
    text: string,
    onClick: () => void,
    title?: string
  ): HTMLButtonElement {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = `jp-CanvasCard-button ${className}`;
    button.textContent = text;
    if (title) {
      button.title = title;
      button.setAttribute('aria-label', title);
    }
    button.addEventListener('click', event => {
      event.stopPropagation();
      onClick();
    });
    return button;
  }

  private _updateCount(): void {
    const count = (this.model as ICodeCellModel).executionCount;
    this._label.textContent = `[${count ?? ' '}]`;
  }

  private _scheduleMarkdown(): void {
    if (this._markdownTimer !== null || !this._rendered) {
      return;
    }
    this._markdownTimer = setTimeout(() => {
      this._markdownTimer = null;
      void this._renderMarkdown();
    }, 250);
  }

  private _showRendered(rendered: boolean): void {
    if (!this._markdown) {
      return;
    }
    this._rendered = rendered;
    this._markdown.setHidden(!rendered);
    this._editor.setHidden(rendered);
    if (rendered) {
      void this._renderMarkdown();
    } else {
      this._editor.editor.focus();
    }
  }

  private async _renderMarkdown(): Promise<void> {
    if (!this._markdown || this.isDisposed) {
      return;
    }
    const source = this.model.sharedModel.getSource();
    const model = new MimeModel({
      data: {
        'text/markdown': source || this._trans.__('*empty markdown cell*')
      },
      trusted: this.model.trusted
    });
    await this._markdown.renderModel(model);
  }

  private _host: ICardHost;
  private _trans: ITrans;
  private _editor: CodeEditorWrapper;
  private _outputs: OutputArea | null = null;
  private _markdown: IRenderMime.IRenderer | null = null;
  private _rendered = true;
  private _markdownTimer: ReturnType<typeof setTimeout> | null = null;
  private _placement: ICellPlacement | null = null;
  private _label!: HTMLSpanElement;
  private _groupButton!: HTMLButtonElement;
  private _collapseButton!: HTMLButtonElement;
}

/**
 * A namespace for CanvasCard statics.
 */
export namespace CanvasCard {
  /**
   * Options of a CanvasCard.
   */
  export interface IOptions {
    /** The notebook cell (from the shared document). */
    model: ICellModel;
    /** The canvas that holds the card. */
    host: ICardHost;
    /** JupyterLab's renderers. */
    rendermime: IRenderMimeRegistry;
    /** Makes the source editor. */
    editorFactory: CodeEditor.Factory;
    /** The translation bundle. */
    trans?: ITrans;
  }
}
