import { describe, expect, it } from 'vitest'
import * as codec from '@proj/codec'
describe('smoke', () => { it('loads', () => { expect(codec).toBeTypeOf('object') }) })
