import { MessageLoop } from '@lumino/messaging';
import { PanelLayout, Widget } from '@lumino/widgets';

/**
 * Lays the cards out on the plane node instead of the widget's own node.
 */
export class PlaneLayout extends PanelLayout {
  constructor(private readonly _host: HTMLElement) {
    super();
  }

  protected attachWidget(_index: number, widget: Widget): void {
    const attached = this.parent?.isAttached ?? false;
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.BeforeAttach);
    }
    this._host.appendChild(widget.node);
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.AfterAttach);
    }
  }

  protected moveWidget(): void {
    // Cards are placed absolutely: their order in the DOM does not matter.
  }

  protected detachWidget(_index: number, widget: Widget): void {
    const attached = this.parent?.isAttached ?? false;
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.BeforeDetach);
    }
    widget.node.remove();
    if (attached) {
      MessageLoop.sendMessage(widget, Widget.Msg.AfterDetach);
    }
  }
}
