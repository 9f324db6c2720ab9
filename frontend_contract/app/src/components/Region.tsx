// An error boundary around one region of a page (the header's cart, the categories, the page
// itself, a chart): a component that throws while rendering takes down its region only, which
// shows the kind message (lib/errors.ts) with "Try again" while the rest of the page works.
import { Component, type ErrorInfo, type ReactNode } from 'react';
import { kindMessage } from '../lib/errors';

interface Props {
  /** The region's name as the shopper would say it ("Cart"); also its data-region in the page. */
  what: string;
  children: ReactNode;
  /** A smaller fallback for the header or a sidebar (no button, one short line). */
  compact?: boolean;
  /** When this changes the region tries again (e.g. the page's path). */
  resetKey?: string;
}

interface State {
  error: unknown;
  key: string | undefined;
}

export class Region extends Component<Props, State> {
  state: State = { error: null, key: this.props.resetKey };

  static getDerivedStateFromError(error: unknown): Partial<State> {
    return { error };
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null;
  }

  componentDidCatch(error: unknown, info: ErrorInfo): void {
    // For the developer's console only; the shopper reads the kind message.
    console.warn(`region "${this.props.what}" failed`, error, info.componentStack);
  }

  render(): ReactNode {
    if (this.state.error === null) return this.props.children;
    const message = kindMessage(this.state.error, this.props.what);
    if (this.props.compact) {
      return (
        <span className="region-error small" role="status" data-region={this.props.what}>
          {message}
        </span>
      );
    }
    return (
      <div className="error region-error" role="alert" data-region={this.props.what}>
        <p>{message}</p>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}
