// Bus subjects of the approval service (besides its RPC subjects).
export const approvalSubjects = {
  /** The Ticket (protobuf) after each change of ticket <id>; holders subscribe before creating it. */
  ticket: (id: string) => `gatehouse.approval.ticket.${id}`,
  /** "<kind>.<id>" as text after every ticket or grant change (consoles refresh their queue). */
  changed: "gatehouse.approval.changed",
} as const;
