import type { ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import { CodeEditor, CodeEditorWrapper } from '@jupyterlab/codeeditor';
import { OutputArea } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime';
import { PanelLayout, Widget } from '@lumino/widgets';
import { english, ITrans } from '../translation';
import type { ICardBox } from './layout';

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
  /** The header was double-clicked: a card the user placed goes back to its column. */
  unplace(card: CanvasCard): void;
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
  get box(): ICardBox | null {
    return this._box;
  }

  /**
   * Draw the card at a box of the layout (its height is its content's).
   *
   * @param hiddenCount - for a heading whose group is folded: how many cells it hides.
   */
  setBox(box: ICardBox, hiddenCount = 0): void {
    const previous = this._box;
    this._box = box;
    const style = this.node.style;
    style.left = `${box.x}px`;
    style.top = `${box.y}px`;
    style.width = `${box.width}px`;
    this.node.dataset.x = `${Math.round(box.x)}`;
    this.node.dataset.y = `${Math.round(box.y)}`;
    this.node.dataset.placed = `${box.placed}`;
    this.setHidden(box.hidden);
    const heading = this.hasClass('jp-mod-heading');
    // A folded heading keeps its title and hides its group; another card shows its header only.
    this.toggleClass('jp-mod-collapsed', box.collapsed && !heading);
    this.toggleClass('jp-mod-groupFolded', box.collapsed && heading);
    this._hiddenNote.hidden = hiddenCount === 0;
    this._hiddenNote.textContent =
      hiddenCount === 0
        ? ''
        : this._trans._n(
            '%1 cell folded',
            '%1 cells folded',
            hiddenCount,
            hiddenCount
          );
    if (!previous || previous.collapsed !== box.collapsed) {
      this._collapseButton.textContent = box.collapsed ? '▸' : '▾';
      this._collapseButton.title = box.collapsed
        ? this._trans.__('Unfold')
        : this._trans.__('Fold');
    }
  }

  /**
   * Show a markdown card's rendered text (as Shift-Enter in its editor does).
   */
  render(): void {
    this._showRendered(true);
  }

  /**
   * Put the cursor in the card's editor (a markdown card shows its source).
   */
  edit(): void {
    if (this._markdown) {
      this._showRendered(false);
    } else {
      this._editor.editor.focus();
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
    header.title = this._trans.__(
      'Drag to move the cell; double-click to put it back in its column'
    );

    this._collapseButton = this._button('jp-CanvasCard-collapse', '▾', () =>
      this._host.toggleCollapsed(this)
    );
    header.appendChild(this._collapseButton);

    this._label = document.createElement('span');
    this._label.className = 'jp-CanvasCard-label';
    this._label.textContent =
      this.model.type === 'code' ? '[ ]' : this.model.type;
    header.appendChild(this._label);

    this._hiddenNote = document.createElement('span');
    this._hiddenNote.className = 'jp-CanvasCard-foldedNote';
    this._hiddenNote.hidden = true;
    header.appendChild(this._hiddenNote);

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
    header.addEventListener('dblclick', event => {
      if (!(event.target as HTMLElement).closest('button, input, form')) {
        this._host.unplace(this);
      }
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
  private _box: ICardBox | null = null;
  private _label!: HTMLSpanElement;
  private _hiddenNote!: HTMLSpanElement;
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
