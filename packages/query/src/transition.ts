/**
 * What a change did to a subscription's result: the record `enter`ed it (inserted, or changed
 * into it), was `update`d inside it, or `leave`s it (changed out of it, or deleted).
 */
export type Transition = 'enter' | 'update' | 'leave'
