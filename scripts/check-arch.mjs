#!/usr/bin/env node
// Checks the shape of the repository (run by `pnpm lint`, so by CI):
//
//   1. no import cycles inside a package, type-only imports included (dpdm);
//   2. no unused files, dependencies or exports, and no import a manifest does not declare (knip, twice:
//      once over sources and tests, once over production code alone, so that a dependency used only by
//      tests is a devDependency);
//   3. the root README's package table names every workspace package, with exactly the packages of ours
//      that its manifest depends on, in an order where every arrow points down the table;
//   4. no source file (src/ of a package or app) over MAX_LINES lines: small modules, one job each;
//   5. every package README links to the design in docs/.
//
//   node scripts/check-arch.mjs [cycles|knip|readme|size|docs]...     # all five without arguments
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCircular, parseDependencyTree } from 'dpdm'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const requested = process.argv.slice(2)
const wanted = (name) => requested.length === 0 || requested.includes(name)

const workspace = []
for (const group of ['packages', 'apps']) {
  for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
    const file = join(root, group, entry.name, 'package.json')
    if (!entry.isDirectory() || !existsSync(file)) continue
    workspace.push({ dir: join(root, group, entry.name), manifest: JSON.parse(readFileSync(file, 'utf8')) })
  }
}

const failures = []

async function checkCycles() {
  for (const pkg of workspace) {
    const src = join(pkg.dir, 'src')
    if (!existsSync(src)) continue
    const tree = await parseDependencyTree('src/**/*.{ts,tsx}', {
      context: pkg.dir,
      cwd: pkg.dir,
      tsconfig: existsSync(join(pkg.dir, 'tsconfig.json')) ? join(pkg.dir, 'tsconfig.json') : undefined,
      transform: false, // keep `import type`: a type-only cycle is still a cycle
      skipDynamicImports: false,
    })
    // Only files of this package: another package's sources (reached through the source condition)
    // are checked as that package.
    const own = {}
    for (const [file, deps] of Object.entries(tree)) {
      const path = resolve(pkg.dir, file)
      if (!path.startsWith(`${src}/`)) continue
      own[file] = deps?.filter((d) => d.id && resolve(pkg.dir, d.id).startsWith(`${src}/`)) ?? null
    }
    for (const cycle of parseCircular(own)) {
      const files = cycle.map((file) => relative(root, resolve(pkg.dir, file)))
      failures.push(`import cycle: ${[...files, files[0]].join(' -> ')}`)
    }
  }
}

function knip(args) {
  const bin = join(root, 'node_modules', '.bin', 'knip')
  try {
    execFileSync(bin, ['--no-progress', '--no-config-hints', ...args], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim()
    failures.push(`knip ${args.join(' ')}:\n${output}`)
  }
}

function checkReadme() {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.split(/^## Packages\s*$/m)[1]?.split(/^## /m)[0]
  if (!section) return failures.push('README.md has no "## Packages" section')
  const short = (name) => name.replace(/^@proj\//, '')
  const names = new Set(workspace.map((pkg) => short(pkg.manifest.name)))
  const rows = []
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim())
    const name = /^\[?`@proj\/([\w-]+)`/.exec(cells[1] ?? '')?.[1]
    if (name) rows.push({ name, imports: cells[3] ?? '' })
  }
  const seen = new Map(rows.map((row, index) => [row.name, index]))
  for (const pkg of workspace) {
    const name = short(pkg.manifest.name)
    const index = seen.get(name)
    if (index === undefined) {
      failures.push(`README.md package table: no row for @proj/${name}`)
      continue
    }
    const declared = Object.keys(pkg.manifest.dependencies ?? {})
      .filter((dep) => dep.startsWith('@proj/'))
      .map(short)
      .sort()
    const cell = rows[index].imports
    const listed = cell
      .split(/[\s,]+/)
      .map((word) => word.replace(/[`()]/g, ''))
      .filter((word) => names.has(word))
      .sort()
    if (declared.length === 0 && !/nothing of ours/.test(cell)) {
      failures.push(`README.md package table: @proj/${name} imports nothing of ours; its row says "${cell}"`)
    } else if (listed.join() !== declared.join()) {
      failures.push(
        `README.md package table: @proj/${name} lists [${listed.join(', ')}], its manifest depends on [${declared.join(', ')}]`,
      )
    }
    for (const dep of declared) {
      if ((seen.get(dep) ?? Number.POSITIVE_INFINITY) < index) continue
      failures.push(`README.md package table: @proj/${name} imports @proj/${dep}, which is not above it`)
    }
  }
  for (const row of rows) {
    if (!names.has(row.name)) failures.push(`README.md package table: @proj/${row.name} is not a package`)
  }
}

// "About 500 lines" in the guide; the check leaves a little room so that a file near the line is split
// on purpose, not by a lint failure in the middle of an unrelated change.
const MAX_LINES = 550

function checkSize() {
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
    )
  for (const pkg of workspace) {
    const src = join(pkg.dir, 'src')
    if (!existsSync(src)) continue
    for (const file of walk(src)) {
      if (!/\.(m?[jt]sx?)$/.test(file)) continue
      const lines = readFileSync(file, 'utf8').split('\n').length - 1
      if (lines > MAX_LINES)
        failures.push(`${relative(root, file)}: ${lines} lines (at most ${MAX_LINES}): split it`)
    }
  }
}

function checkDocs() {
  for (const pkg of workspace) {
    const file = join(pkg.dir, 'README.md')
    const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
    if (!/\]\((\.\.\/)+docs\/(design|architecture)\.md/.test(text))
      failures.push(`${relative(root, file)}: no link to the design (docs/design.md or docs/architecture.md)`)
  }
}

if (wanted('cycles')) await checkCycles()
if (wanted('knip')) {
  knip([])
  knip(['--production', '--include', 'dependencies,unlisted,unresolved'])
}
if (wanted('readme')) checkReadme()
if (wanted('size')) checkSize()
if (wanted('docs')) checkDocs()

if (failures.length > 0) {
  console.error(`check-arch: ${failures.length} problem(s)\n\n${failures.join('\n\n')}`)
  process.exit(1)
}
console.log(
  `check-arch: no import cycles, knip clean, README package table matches the manifests, no source file over ${MAX_LINES} lines, every package README links to docs/`,
)
