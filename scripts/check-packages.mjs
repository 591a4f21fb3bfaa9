#!/usr/bin/env node
// Checks that publishable packages install and work on their own, the way users get them.
//
//   node scripts/check-packages.mjs                       # every non-private package (packages/, apps/)
//   node scripts/check-packages.mjs @proj/codec packages/topic-matcher   # names or directories
//   node scripts/check-packages.mjs --keep                # keep the temporary folder for inspection
//
// For each package (after `pnpm build`): `pnpm pack` into a temporary folder; the packed
// package.json must hold no `workspace:` or `catalog:` range; `publint --strict` must pass; the
// tarball is checked by `attw --profile esm-only` and installed with npm into an empty folder (sibling @proj/* dependencies are packed and
// installed alongside, since they are not on the registry yet); then plain Node imports it and must
// see the same named exports as the workspace build. Exits 1 with a summary when anything fails.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const keep = args.includes('--keep')
const requested = args.filter((a) => !a.startsWith('--'))

/** Every workspace package under packages/ and apps/, by name. */
const workspace = new Map()
for (const group of ['packages', 'apps']) {
  const base = join(root, group)
  if (!existsSync(base)) continue
  for (const entry of readdirSync(base, { withFileTypes: true })) {
    const file = join(base, entry.name, 'package.json')
    if (!entry.isDirectory() || !existsSync(file)) continue
    const manifest = JSON.parse(readFileSync(file, 'utf8'))
    workspace.set(manifest.name, { name: manifest.name, dir: join(base, entry.name), manifest })
  }
}

const internalDeps = (pkg) => Object.keys(pkg.manifest.dependencies ?? {}).filter((dep) => workspace.has(dep))

function selectPackages() {
  if (requested.length === 0) {
    return [...workspace.values()].filter((pkg) => !pkg.manifest.private)
  }
  return requested.map((arg) => {
    const byName = workspace.get(arg)
    if (byName) return byName
    const dir = resolve(root, arg)
    const byDir = [...workspace.values()].find((pkg) => pkg.dir === dir)
    if (!byDir)
      fail(
        `unknown package ${JSON.stringify(arg)} (give a package name or a directory under packages/ or apps/)`,
      )
    return byDir
  })
}

function fail(message) {
  console.error(`check-packages: ${message}`)
  process.exit(1)
}

function run(command, commandArgs, cwd) {
  try {
    return execFileSync(command, commandArgs, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_update_notifier: 'false' },
    })
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim()
    throw new Error(
      `\`${command} ${commandArgs.join(' ')}\` failed in ${relative(root, cwd) || '.'}:\n${output}`,
    )
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'check-packages-'))
const tarballs = new Map()

/** Packs a workspace package once; returns the tarball path. */
function pack(pkg) {
  const cached = tarballs.get(pkg.name)
  if (cached) return cached
  const dest = join(tmp, 'tarballs', pkg.name.replace('/', '+'))
  mkdirSync(dest, { recursive: true })
  run('pnpm', ['pack', '--pack-destination', dest], pkg.dir)
  const file = readdirSync(dest).find((f) => f.endsWith('.tgz'))
  if (!file) throw new Error(`pnpm pack produced no tarball for ${pkg.name}`)
  const path = join(dest, file)
  tarballs.set(pkg.name, path)
  return path
}

/** The package and its @proj/* dependencies, transitively (they are not on the registry). */
function closure(pkg, seen = new Map()) {
  if (seen.has(pkg.name)) return seen
  seen.set(pkg.name, pkg)
  for (const dep of internalDeps(pkg)) closure(workspace.get(dep), seen)
  return seen
}

async function check(pkg) {
  const main = pkg.manifest.exports?.['.']?.default ?? pkg.manifest.main
  if (!main || !existsSync(join(pkg.dir, main))) {
    throw new Error(`${relative(root, join(pkg.dir, main ?? 'dist'))} is missing: run \`pnpm build\` first`)
  }

  // 1. pack, and read the packed manifest
  const tarball = pack(pkg)
  const extract = join(tmp, 'extract', pkg.name.replace('/', '+'))
  mkdirSync(extract, { recursive: true })
  run('tar', ['-xzf', tarball, '-C', extract, 'package/package.json'], root)
  const packed = readFileSync(join(extract, 'package', 'package.json'), 'utf8')
  const leaks = [...packed.matchAll(/"([^"]+)":\s*"((?:workspace|catalog):[^"]*)"/g)].map(
    (m) => `${m[1]}: ${m[2]}`,
  )
  if (leaks.length > 0) {
    throw new Error(
      `packed package.json still has workspace-only ranges (publish with pnpm): ${leaks.join(', ')}`,
    )
  }

  // 2. publint --strict, and the types resolve for ESM consumers (arethetypeswrong)
  const publint = join(root, 'node_modules', '.bin', 'publint')
  run(publint, ['--strict'], pkg.dir)
  const attw = join(root, 'node_modules', '.bin', 'attw')
  run(attw, [tarball, '--profile', 'esm-only', '--format', 'ascii'], root)

  // 3. npm install the tarball (and its sibling tarballs) into an empty folder
  const project = join(tmp, 'install', pkg.name.replace('/', '+'))
  mkdirSync(project, { recursive: true })
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'check-install', private: true, type: 'module' })}\n`,
  )
  const all = [...closure(pkg).values()].map(pack)
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...all], project)

  // 4. import it with plain Node (no custom conditions) and compare named exports with the build
  const expected = Object.keys(await import(pathToFileURL(join(pkg.dir, main)).href)).sort()
  if (expected.length === 0) throw new Error(`${pkg.name} has no named exports`)
  const script = `const m = await import(${JSON.stringify(pkg.name)}); console.log(JSON.stringify(Object.keys(m).sort()))`
  const output = run(process.execPath, ['--input-type=module', '-e', script], project).trim()
  const actual = JSON.parse(output.split('\n').at(-1))
  const missing = expected.filter((name) => !actual.includes(name))
  if (missing.length > 0) throw new Error(`installed ${pkg.name} lacks exports: ${missing.join(', ')}`)
  return actual.length
}

const selected = selectPackages()
if (selected.length === 0) fail('no publishable packages selected')
console.log(`check-packages: ${selected.map((p) => p.name).join(', ')} (temp: ${tmp})`)

const failures = []
for (const pkg of selected) {
  const started = Date.now()
  try {
    const exports = await check(pkg)
    console.log(
      `  ok   ${pkg.name}: packed, publint --strict, attw, npm-installed alone, ${exports} exports (${Date.now() - started} ms)`,
    )
  } catch (error) {
    failures.push(pkg.name)
    console.error(`  FAIL ${pkg.name}: ${error.message}`)
  }
}

if (!keep) rmSync(tmp, { recursive: true, force: true })
if (failures.length > 0)
  fail(`${failures.length} of ${selected.length} package(s) failed: ${failures.join(', ')}`)
console.log(`check-packages: all ${selected.length} package(s) passed`)
