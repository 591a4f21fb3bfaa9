#!/usr/bin/env node
// Fails when a relative link in a tracked markdown file does not resolve in a clone: the target file
// must exist inside the repository, and a `#fragment` into a markdown file must name one of its
// headings (GitHub's anchors). Absolute paths and links that leave the repository fail too, since
// they only work on the machine they were written on. Web links (http:, https:, mailto:) are not fetched.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], {
  cwd: root,
  encoding: 'utf8',
})
  .split('\n')
  .filter((f) => f !== '' && !f.startsWith('.changeset/') && existsSync(join(root, f)))

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text) {
  const seen = new Map()
  const out = new Set()
  for (const line of withoutCode(text).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!m) continue
    const base = m[1]
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** The text with fenced code blocks and inline code blanked out (links there are examples). */
function withoutCode(text) {
  return text
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, (block) => block.replace(/[^\n]/g, ' '))
    .replace(/`[^`\n]*`/g, (code) => ' '.repeat(code.length))
}

function* links(text) {
  const clean = withoutCode(text)
  // inline links and images: [text](target "title")
  for (const m of clean.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) yield m[1]
  // reference definitions: [id]: target
  for (const m of clean.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) yield m[1]
}

const anchorCache = new Map()
const problems = []
for (const file of files) {
  const text = readFileSync(join(root, file), 'utf8')
  for (const target of links(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // http:, https:, mailto:
    const [pathPart, fragment] = target.split('#', 2)
    const path = decodeURIComponent(pathPart ?? '')
    let resolved = join(root, file)
    if (path !== '') {
      if (isAbsolute(path)) {
        problems.push(`${file}: ${target} is an absolute path (use a path relative to ${file})`)
        continue
      }
      resolved = resolve(root, dirname(file), path)
      const inside = relative(root, resolved)
      if (inside.startsWith('..') || isAbsolute(inside)) {
        problems.push(`${file}: ${target} points outside the repository`)
        continue
      }
      if (!existsSync(resolved)) {
        problems.push(`${file}: ${target} does not exist`)
        continue
      }
    }
    if (fragment && resolved.endsWith('.md') && statSync(resolved).isFile()) {
      if (!anchorCache.has(resolved)) anchorCache.set(resolved, anchors(readFileSync(resolved, 'utf8')))
      if (!anchorCache.get(resolved).has(fragment.toLowerCase()))
        problems.push(`${file}: ${target} names no heading of ${relative(root, resolved)}`)
    }
  }
}

if (problems.length > 0) {
  console.error(`check-links: ${problems.length} broken link(s) in markdown files:`)
  for (const p of problems) console.error(`  ${p}`)
  process.exit(1)
}
console.log(`check-links: ${files.length} markdown files, every relative link resolves`)
