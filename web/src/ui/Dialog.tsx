import { useEffect, useId, useRef, type ReactNode } from "react";

/**
 * A modal dialog, open while it is mounted: the browser's own `<dialog>`
 * (focus kept inside, Escape closes it, the page behind inert), which needs
 * no inline style under the app's content security policy.
 */
export function Dialog({ title, description, onClose, children }: {
  title: string;
  description?: ReactNode;
  onClose: () => void;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const element = ref.current;
    if (element && !element.open) element.showModal();
    // No close() on cleanup: removing the element ends the modal, and a
    // close() here would fire `close` after StrictMode's second showModal().
  }, []);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby={`${id}-title`} aria-describedby={description ? `${id}-help` : undefined}
      onClose={onClose}>
      <h2 id={`${id}-title`}>{title}</h2>
      {description && <div id={`${id}-help`} className="muted">{description}</div>}
      {children}
    </dialog>
  );
}
